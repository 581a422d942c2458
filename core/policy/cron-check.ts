/** Cron expression validation (at definition and enqueue time). */
import { createRequire } from 'node:module';
import type { CronExpressionParser } from 'cron-parser';
import { ValidationError } from '../errors.js';

let parser: typeof CronExpressionParser | null = null;

/**
 * cron-parser, loaded by the first expression parsed: with luxon beneath it, loading it was ~30 ms
 * of every cold start (`process-tasks`, an app's import of bgtasks), also where no task has a
 * cron. It is CommonJS, so require() loads it synchronously, as parsing needs.
 */
export function cronParser(): typeof CronExpressionParser {
  parser ??= (createRequire(import.meta.url)('cron-parser') as typeof import('cron-parser')).CronExpressionParser;
  return parser;
}

const EXPECTED = 'expected a cron expression with 5 fields (minute hour day month weekday) or 6 (with seconds first)';

/** The whitespace-separated fields of an expression, split as cron-parser splits them. */
export function cronFields(expression: string): string[] {
  const trimmed = expression.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/);
}

export function checkCron(expression: string, label: string): void {
  const reason = cronProblem(expression);
  if (reason !== null) throw new ValidationError(`Invalid ${label}: ${JSON.stringify(expression)} — ${reason}; ${EXPECTED}`);
}

function cronProblem(expression: string): string | null {
  const fields = cronFields(expression);
  // cron-parser pads a short expression with defaults and reads '' as "every minute", so a
  // truncated expression would silently run far more often than meant.
  if (fields.length !== 5 && fields.length !== 6) {
    return `it has ${fields.length} field${fields.length === 1 ? '' : 's'}`;
  }
  // cron-parser's Jenkins-style H picks a random value in each process unless seeded, so workers
  // would disagree on the slots. Month and weekday names (THU) are removed first.
  if (fields.some((f) => f.replace(/[a-z]{3}/gi, '').includes('H'))) {
    return 'hashed values (H) are not supported';
  }
  try {
    cronParser().parse(expression, { tz: 'UTC' });
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return null;
}

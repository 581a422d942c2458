/**
 * Recurring schedules declared in task files: `background({ cron: '0 3 * * *', timezone, args })`
 * or `cron: [{ cron, timezone?, args?, key?, catchUp? }, …]`. This module validates them when the
 * task is defined and turns them into DeclaredSchedules for the scheduler.
 */
import { ValidationError } from '../errors.js';
import { canonicalArgs } from '../base/json.js';
import { checkCron } from '../policy/cron-check.js';
import { isValidTimeZone, timeZoneProblem } from '../policy/timezone.js';

/**
 * What to do with slots missed while no worker ran (older than the scheduler's grace period):
 * `skip` runs none of them (only the next slot, the default), `once` runs one for the whole
 * missed period (the latest), and a number N backfills the latest N.
 */
export type CatchUp = 'skip' | 'once' | number;

export type CronSchedule<A extends unknown[] = unknown[]> = {
  /** 5 fields (minute hour day month weekday) or 6 (seconds first). */
  cron: string;
  /** IANA zone; default: the task's `timezone`, then the `timezone` setting (UTC). */
  timezone?: string;
  /** Identity of the schedule within its task; keep it when you change the expression. */
  key?: string;
  catchUp?: CatchUp;
} & CronArgs<A>;

/**
 * A schedule's arguments: optional only when the task takes none (or only optional ones). A task
 * of required parameters on a schedule without `args` would run each slot with them undefined.
 */
export type CronArgs<A extends unknown[]> = [] extends A
  ? {
      /** The task's arguments for this schedule. Default: none. */
      args?: A;
    }
  : {
      /** The task's arguments for this schedule (required: the task takes arguments). */
      args: A;
    };

/**
 * background()'s options as the task's parameters allow them: one `cron` expression needs `args`
 * when the task takes required arguments (a list of schedules checks each through CronSchedule).
 */
export type CronCall<A extends unknown[]> = [] extends A ? unknown : { cron?: readonly CronSchedule<A>[] | CronSchedule<A>[] } | { cron: string; args: A };

/** A schedule as the scheduler handles it. */
export interface DeclaredSchedule {
  name: string;
  key: string;
  cron: string;
  /** null: the `timezone` setting applies. */
  timezone: string | null;
  /** Canonical JSON of the arguments. */
  args: string;
  catchUp: CatchUp;
}

export function checkCatchUp(v: unknown, label: string): CatchUp {
  if (v === 'skip' || v === 'once') return v;
  if (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1000) return v as number;
  throw new ValidationError(`Invalid ${label}: ${JSON.stringify(v)} — expected "skip", "once" or a number of slots from 1 to 1000`);
}

interface CronOptions {
  cron?: unknown;
  args?: unknown;
  timezone?: unknown;
  catchUp?: unknown;
}

/**
 * The schedules a definition declares, validated (invalid expressions, zones and arguments are
 * rejected when the task is defined, with the parser's reason).
 */
export function declaredSchedules(name: string, options: CronOptions): DeclaredSchedule[] {
  if (options.cron === undefined) {
    if (options.args !== undefined) throw new ValidationError(`background() "${name}": args is only for cron schedules — pass arguments when you call the task`);
    if (options.catchUp !== undefined) throw new ValidationError(`background() "${name}": catchUp is only for cron schedules`);
    return [];
  }
  const where = `background() "${name}"`;
  const taskZone = options.timezone;
  const one = (spec: CronOptions & { key?: unknown }, label: string, defaultKey: string): DeclaredSchedule => {
    // A single schedule's fields are the task's own options (cron, timezone, args); a list item's are cron[i].field.
    const at = (field: string) => (label ? `${label}.${field}` : field);
    if (typeof spec.cron !== 'string') throw new ValidationError(`Invalid ${at('cron')} in ${where}: expected a cron expression string`);
    checkCron(spec.cron, `${at('cron')} in ${where}`);
    const zone = spec.timezone ?? taskZone ?? null;
    if (zone !== null && (typeof zone !== 'string' || !isValidTimeZone(zone))) {
      throw new ValidationError(
        `Invalid ${at('timezone')} in ${where}: ${JSON.stringify(zone)} — expected an IANA time zone such as "Europe/Berlin" (${timeZoneProblem(zone)})`,
      );
    }
    const args = spec.args ?? [];
    if (!Array.isArray(args)) throw new ValidationError(`Invalid ${at('args')} in ${where}: expected an array of the task's arguments`);
    let argsJson: string;
    try {
      argsJson = canonicalArgs(args);
    } catch (err) {
      throw new ValidationError(`Invalid ${at('args')} in ${where}: ${(err as Error).message}`, { cause: err });
    }
    const key = spec.key ?? defaultKey;
    if (typeof key !== 'string' || key.length === 0 || key.length > 190) {
      throw new ValidationError(`Invalid ${at('key')} in ${where}: ${JSON.stringify(key)} — expected 1 to 190 characters`);
    }
    return {
      name,
      key,
      cron: spec.cron.trim(),
      timezone: zone as string | null,
      args: argsJson,
      catchUp: spec.catchUp === undefined ? (options.catchUp === undefined ? 'skip' : checkCatchUp(options.catchUp, `catchUp in ${where}`)) : checkCatchUp(spec.catchUp, `${at('catchUp')} in ${where}`),
    };
  };
  if (typeof options.cron === 'string') {
    return [one({ cron: options.cron, args: options.args, timezone: taskZone }, '', 'default')];
  }
  if (!Array.isArray(options.cron) || options.cron.length === 0) {
    throw new ValidationError(`Invalid cron in ${where}: expected a cron expression or a non-empty array of { cron, timezone?, args?, key?, catchUp? }`);
  }
  if (options.args !== undefined) throw new ValidationError(`Invalid args in ${where}: with several cron schedules, give args in each one`);
  const list = (options.cron as unknown[]).map((spec, i) => {
    if (typeof spec !== 'object' || spec === null) throw new ValidationError(`Invalid cron[${i}] in ${where}: expected { cron, timezone?, args?, key?, catchUp? }`);
    const s = spec as CronOptions & { key?: unknown };
    // Without a key, a schedule is identified by what it is; changing it then starts a new one.
    const defaultKey = `${String(s.cron).trim()}|${String(s.timezone ?? taskZone ?? '')}|${canonicalArgsSafe(s.args)}`.slice(0, 190);
    return one(s, `cron[${i}]`, defaultKey);
  });
  const seen = new Set<string>();
  for (const s of list) {
    if (seen.has(s.key)) throw new ValidationError(`Invalid cron in ${where}: two schedules have the key ${JSON.stringify(s.key)} — give each a distinct key`);
    seen.add(s.key);
  }
  return list;
}

function canonicalArgsSafe(args: unknown): string {
  try {
    return Array.isArray(args) ? canonicalArgs(args) : '[]';
  } catch {
    return '?';
  }
}

/**
 * Running a command body: a failure becomes one line on stderr (passwords masked) and a
 * documented exit code, never a stack trace from deep inside; connections are closed at the end.
 */
import { maskUrlsIn } from '../core/base/redact.js';
import { isErrorKind } from '../core/errors.js';
import { EXIT } from './exit-codes.js';
import { UsageError } from './flags.js';
import { flushHeldOutput } from './output.js';

const USAGE_KINDS = ['ConfigError', 'ValidationError', 'UnknownTaskError', 'TaskNotFoundError'];

/** The exit code and one-line message for an error. */
export function describeFailure(err: unknown): { code: number; message: string } {
  const message = maskUrlsIn(err instanceof Error ? err.message : String(err));
  if (err instanceof UsageError || USAGE_KINDS.some((k) => isErrorKind(err, k))) return { code: EXIT.USAGE, message };
  if (isErrorKind(err, 'NotMigratedError')) return { code: EXIT.NOT_MIGRATED, message };
  if (isErrorKind(err, 'TaskLoadError')) return { code: EXIT.FAILURE, message };
  const code = (err as { code?: string } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || (err as Error)?.name === 'KnexTimeoutError') {
    return { code: EXIT.FAILURE, message: `Cannot reach the database: ${message}` };
  }
  return { code: EXIT.FAILURE, message };
}

/** Runs a command body; prints a failure as one line on stderr and sets the exit code. */
export async function runCommand(body: () => Promise<number | void>): Promise<void> {
  let code: number;
  try {
    code = (await body()) ?? EXIT.OK;
  } catch (err) {
    const f = describeFailure(err);
    // The log lines before the failure come before it, also when both streams go to one file.
    flushHeldOutput();
    process.stderr.write(`bgtasks: ${f.message}\n`);
    if (process.env.BGTASKS_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    code = f.code;
  }
  const { closeConnections } = await import('../core/store/connection.js');
  await closeConnections().catch(() => {});
  process.exitCode = code;
}

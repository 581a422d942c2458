/**
 * What every command shares: turning flags into settings (each value validated and named by its
 * flag), and turning errors into one line and an exit code, never a stack trace from deep inside.
 */
import { isErrorKind } from '../core/errors.js';
import { maskUrlsIn } from '../core/base/redact.js';
import { parseWithSpec, type SettingName } from '../core/config/settings-spec.js';
import type { SettingsInput } from '../core/config/settings.js';
import { EXIT } from './exit-codes.js';

export class UsageError extends Error {}

/** Flags shared by commands that touch the database. */
export interface DbFlags {
  database?: string;
  tablePrefix?: string;
}

/** Validates `value` as setting `key`, naming `flag` in the error. */
export function flagSetting(key: SettingName, value: string | undefined, flag: string): unknown {
  if (value === undefined) return undefined;
  return parseWithSpec(key, value, flag, true);
}

export function overridesFrom(flags: DbFlags): SettingsInput {
  const o: SettingsInput = {};
  if (flags.database !== undefined) o.database = String(flags.database);
  if (flags.tablePrefix !== undefined) o.tablePrefix = flagSetting('tablePrefix', String(flags.tablePrefix), '--table-prefix') as string;
  return o;
}

/** Parses a number flag; `what` says what is allowed. */
export function numberFlag(value: string | undefined, flag: string, what: string, ok: (n: number) => boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`Invalid ${flag}: ${JSON.stringify(value)} — expected ${what}`);
  return n;
}

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
    process.stderr.write(`bgtasks: ${f.message}\n`);
    if (process.env.BGTASKS_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    code = f.code;
  }
  const { closeConnections } = await import('../core/store/connection.js');
  await closeConnections().catch(() => {});
  process.exitCode = code;
}

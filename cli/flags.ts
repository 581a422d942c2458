/**
 * Flags into values: settings (each value validated and named by its flag), numbers, ids, lists,
 * states, creators and times. A bad value is a UsageError naming the flag and what was expected.
 */
import { checkTaskId } from '../core/api/handle.js';
import { decimal, parseWithSpec, type SettingName } from '../core/config/settings-spec.js';
import type { SettingsInput } from '../core/config/settings.js';
import { STATUSES, type Creator, type Status } from '../core/types.js';

export class UsageError extends Error {}

/**
 * The environment variable that carries `--database` from the `--dev` supervisor to its worker
 * child: in the child's arguments, a password would be readable by every local user (ps). The
 * child reads it as the flag, so it keeps the flag's precedence (above configure() and
 * BGTASKS_DATABASE_URL).
 */
export const DEV_DATABASE_ENV = 'BGTASKS_DEV_DATABASE';

/** Flags shared by commands that touch the database. */
export interface DbFlags {
  database?: string;
  tablePrefix?: string;
  connectTimeout?: string;
  statementTimeout?: string;
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
  if (flags.connectTimeout !== undefined) o.connectTimeout = flagSetting('connectTimeout', String(flags.connectTimeout), '--connect-timeout') as number;
  if (flags.statementTimeout !== undefined) o.statementTimeout = flagSetting('statementTimeout', String(flags.statementTimeout), '--statement-timeout') as number;
  return o;
}

/** Parses a number flag; `what` says what is allowed. */
export function numberFlag(value: string | undefined, flag: string, what: string, ok: (n: number) => boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`Invalid ${flag}: ${JSON.stringify(value)} — expected ${what}`);
  return n;
}

/** Task ids from the command line: each checked, duplicates dropped, order kept. */
export function parseIds(raw: readonly string[] | undefined): string[] {
  if (!raw || raw.length === 0) throw new UsageError('Missing task id(s) — pass one or more ids, e.g. 42 43');
  const ids: string[] = [];
  for (const r of raw) {
    const id = checkTaskId(r.trim());
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

/** A comma-separated list flag; empty parts are an error naming the flag. */
export function parseList(value: string | undefined, flag: string, what = 'names'): string[] | null {
  if (value === undefined) return null;
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw new UsageError(`Invalid ${flag}: ${JSON.stringify(value)} — expected a comma-separated list of ${what}`);
  return [...new Set(parts)];
}

/** `--state ready,failed` → ['READY', 'FAILED']. */
export function parseStates(value: string | undefined): Status[] | null {
  const list = parseList(value, '--state', 'states');
  if (!list) return null;
  return list.map((s) => {
    const up = s.toUpperCase() as Status;
    if (!STATUSES.includes(up)) {
      throw new UsageError(`Invalid --state: ${JSON.stringify(s)} — expected ${STATUSES.map((x) => x.toLowerCase()).join(', ')} (comma-separated for several)`);
    }
    return up;
  });
}

/** `--creator type:id`. */
export function parseCreator(value: string | undefined): Creator | null {
  if (value === undefined) return null;
  const at = value.indexOf(':');
  if (at <= 0 || at === value.length - 1) throw new UsageError(`Invalid --creator: ${JSON.stringify(value)} — expected type:id, e.g. user:42`);
  return { type: value.slice(0, at), id: value.slice(at + 1) };
}

/**
 * `--since`: seconds before now (`3600`, fractions allowed) or an ISO 8601 time
 * (`2030-01-01T12:00:00Z`; a date alone is midnight UTC). Returns epoch ms.
 */
export function parseSince(value: string | undefined, nowMs: number): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(v)) return nowMs - Math.round(Number(v) * 1000);
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) {
    // A time without a zone is read as UTC, like every time bgtasks stores and shows.
    const withZone = /T|\s/.test(v) && !/(Z|[+-]\d{2}:?\d{2})$/.test(v) ? `${v.replace(' ', 'T')}Z` : v.replace(' ', 'T');
    const ms = Date.parse(withZone);
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(`Invalid --since: ${JSON.stringify(value)} — expected seconds (e.g. 3600) or an ISO time (e.g. 2030-01-01T12:00:00Z)`);
}

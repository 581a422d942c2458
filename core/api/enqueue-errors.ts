/**
 * Enqueue errors an application can read: a failure to reach the database (an outage, a restart,
 * a killed connection, a pool whose connections all stayed in use) becomes a
 * DatabaseUnavailableError naming the task and the database (its password masked) and the cause,
 * without the statement. knex puts the whole statement, with the
 * task's arguments inlined, before the driver's message (MySQL/MariaDB measured it in
 * RESTART-01), and arguments may be private. The driver's error stays as `cause`. Other errors
 * (validation, a full queue, a missing table) pass through unchanged.
 */
import { DatabaseUnavailableError } from '../errors.js';
import { connectionProblem, poolProblem } from '../store/connection.js';
import { isStatementTimeout } from '../store/dialects/timeouts.js';
import type { Store } from '../store/store.js';

/** The driver's own words: knex formats `${statement} - ${message}`, so the part after the last ` - `. */
function driverWords(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown } | null;
  const msg = typeof e?.message === 'string' ? e.message : '';
  const at = msg.lastIndexOf(' - ');
  const words = (at >= 0 ? msg.slice(at + 3) : msg).trim();
  const code = typeof e?.code === 'string' ? e.code : '';
  if (!words) return code || 'unknown error';
  return code && !words.includes(code) ? `${words} (${code})` : words;
}

/** `err` as an application should see it from enqueue (`what`: the task name, or "3 calls of x"). */
export function enqueueError(store: Store, what: string, err: unknown): unknown {
  if (err instanceof DatabaseUnavailableError || store.dialect.classifyError(err) !== 'connection') return err;
  const spec = store.conn.spec;
  const reason = poolProblem(store.knex, err) ?? connectionProblem(err, spec) ?? driverWords(err);
  // The statement was sent and its answer never came: it may have been stored (TIMEOUT-01).
  const unknown = isStatementTimeout(err) ? '; it may have been stored all the same: retry with the same idempotencyKey, which cannot store it twice' : '';
  return new DatabaseUnavailableError(`Cannot enqueue ${what}: the database ${spec.display} is unavailable: ${reason}${unknown}`, { cause: err });
}

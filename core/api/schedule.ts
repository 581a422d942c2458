/**
 * `schedule(when, options?)`: the call-site options, passed as the last argument of a task call.
 * The object is branded (with a `Symbol.for` key, so copies of the package agree), so it can never
 * be taken for one of the task's own arguments.
 */
import { describeValue } from '../config/settings-spec.js';
import type { Knex } from 'knex';
import { ValidationError } from '../errors.js';
import { checkOptions, CALL_OPTION_KEYS } from '../policy/options.js';
import { checkWhen } from '../policy/when.js';
import { checkIdempotencyKey } from '../policy/idempotency.js';
import type { CallOptions, When } from '../types.js';

const BRAND = Symbol.for('bgtasks.schedule');
declare const scheduleBrand: unique symbol;

export interface ScheduleOptions extends CallOptions {
  /** Write the task inside this knex transaction (or on this knex instance). */
  db?: Knex | Knex.Transaction;
  /** The named connection to store the task in (see the `connections` setting). */
  connection?: string;
  /**
   * Names this enqueue (1 to 190 characters): while its task is pending, or finished with its
   * result kept, an enqueue with the same key returns that task (`outcome: 'existing'`) instead
   * of storing a twin, so an enqueue whose outcome is unknown can be retried safely. The same key
   * for another call (another task name or other arguments) is a ValidationError.
   */
  idempotencyKey?: string;
}

/** What `.bulk(calls, options)` accepts: the call-site options, a run time, and a key per call. */
export interface BulkOptions<A extends unknown[] = unknown[]> extends Omit<ScheduleOptions, 'idempotencyKey'> {
  when?: When;
  /** Each call's idempotency key, from its arguments (one key per call, so a function here). */
  idempotencyKey?: (...args: A) => string;
}

export interface Schedule {
  readonly [scheduleBrand]: true;
  /** The run time: seconds from now, a Date, or a duration; undefined for the task's default. */
  readonly when: When | undefined;
  readonly options: Readonly<ScheduleOptions>;
}

export const SCHEDULE_OPTION_KEYS = [...CALL_OPTION_KEYS, 'db', 'connection', 'idempotencyKey'] as const;

/**
 * `connection` and `db`, where the call site stores its task, checked here rather than met as a
 * driver's TypeError at enqueue (`db.transaction is not a function`); `null` is refused, not
 * taken for "the configured database".
 */
export function checkTarget(options: { connection?: unknown; db?: unknown }, where: string): void {
  if (options.connection !== undefined && typeof options.connection !== 'string') {
    throw new ValidationError(`Invalid connection in ${where}: ${describeValue(options.connection)} — expected the name of a configured connection`);
  }
  const db: unknown = options.db;
  // A knex instance and a knex transaction are both functions with transaction() and a client.
  const knexLike = typeof db === 'function' && typeof (db as { transaction?: unknown }).transaction === 'function' && typeof (db as { client?: unknown }).client === 'object';
  if (db !== undefined && !knexLike) {
    const shown = typeof db === 'string' ? JSON.stringify(db) : typeof db === 'object' && db !== null ? 'an object' : String(db);
    throw new ValidationError(
      `Invalid db in ${where}: ${shown} — expected a knex instance or a knex transaction (leave db out for the configured database; a named database is chosen with connection)`,
    );
  }
}

/** Call-site options: `await sendMail(to, schedule(90, { priority: 5 }))`. */
export function schedule(when?: When, options: ScheduleOptions = {}): Schedule {
  checkWhen(when, 'schedule(when)');
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError('Invalid schedule(when, options): options must be an object');
  }
  checkOptions(options as Record<string, unknown>, SCHEDULE_OPTION_KEYS, 'schedule() options');
  checkTarget(options, 'schedule() options');
  if (options.idempotencyKey !== undefined) checkIdempotencyKey(options.idempotencyKey, 'idempotencyKey in schedule() options');
  const s = { when, options: Object.freeze({ ...options }) };
  Object.defineProperty(s, BRAND, { value: true, enumerable: false });
  return Object.freeze(s) as unknown as Schedule;
}

/** Call-site options with only an idempotency key: `await chargeOrder(42, idempotencyKey('charge:order-42'))`. */
export function idempotencyKey(key: string): Schedule {
  checkIdempotencyKey(key, 'idempotencyKey(key)');
  return schedule(undefined, { idempotencyKey: key });
}

export function isSchedule(v: unknown): v is Schedule {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * Bounds on every wait for a database server (the `connectTimeout` and `statementTimeout`
 * settings), applied to the pools bgtasks opens itself. Without them a connection whose packets
 * are dropped waits as long as TCP does: an enqueue measured 30 s on MariaDB and 90 s on
 * PostgreSQL before it failed (TIMEOUT-01 in docs/scenarios.md).
 *
 * The statement bound is kept on the client, for every statement of the connection, `BEGIN` and
 * `COMMIT` included: the drivers' own per-query timeouts leave a timed-out connection in the pool
 * with its statement still in flight, and PostgreSQL's `statement_timeout` is session state that
 * PgBouncer in transaction mode refuses as a startup parameter, and cannot help anyway when no
 * packet reaches the server. A statement without an answer in time closes its connection, so the
 * pool never hands it out again, and fails with an error whose code is STATEMENT_TIMEOUT_CODE.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';

export interface Timeouts {
  /** Opening a connection (TCP, TLS, login); the pool's wait for a free one is this plus a margin. */
  connectMs: number;
  /** The answer to one statement. */
  statementMs: number;
}

/** The driver error code of a statement that got no answer within the statement timeout. */
export const STATEMENT_TIMEOUT_CODE = 'BGTASKS_STATEMENT_TIMEOUT';

/**
 * The pool waits a little longer than one connection attempt, so that an attempt that fails
 * reports its own reason (refused, timed out, bad password) instead of the pool's bare timeout.
 */
export const ACQUIRE_MARGIN_MS = 500;

export function timeoutsOf(settings: { connectTimeout: number; statementTimeout: number }): Timeouts {
  return { connectMs: Math.round(settings.connectTimeout * 1000), statementMs: Math.round(settings.statementTimeout * 1000) };
}

/**
 * `config` with the connect bound set on the driver (`driverKey`, in ms) and on the pool. A value
 * the application set in its own knex config wins. A URL given as the connection becomes the
 * driver's URL option (`urlKey`), so the bound can sit beside it; a connection function is left
 * alone.
 */
export function withConnectTimeout(config: Knex.Config, timeouts: Timeouts, driverKey: string, urlKey: string): Knex.Config {
  const c = config.connection as unknown;
  let connection = c;
  if (typeof c === 'string') connection = { [urlKey]: c, [driverKey]: timeouts.connectMs };
  else if (c && typeof c === 'object') connection = { [driverKey]: timeouts.connectMs, ...(c as object) };
  return {
    ...config,
    connection: connection as Knex.Config['connection'],
    acquireConnectionTimeout: config.acquireConnectionTimeout ?? timeouts.connectMs + ACQUIRE_MARGIN_MS,
  };
}

const exempt = new AsyncLocalStorage<boolean>();
/** Calls of withoutStatementTimeout under way. */
let exemptRuns = 0;

/**
 * Runs `fn` without the statement timeout: migrations may rewrite a large table, which takes as
 * long as it takes, and a migration cut off half-way on MySQL (DDL is not transactional) is worse
 * than a slow one.
 *
 * Once the last such call ends, the storage is disabled again: on Node 20 an AsyncLocalStorage
 * that has run once hooks every promise the process makes from then on: a worker in a process
 * that had migrated (`migrate()` at an application's start, `process-tasks --migrate`) ran 4-8 %
 * slower (measured on SQLite and PostgreSQL, 10,000 no-op tasks at concurrency 16).
 */
export async function withoutStatementTimeout<T>(fn: () => Promise<T>): Promise<T> {
  exemptRuns++;
  try {
    return await exempt.run(true, fn);
  } finally {
    if (--exemptRuns === 0) exempt.disable();
  }
}

export interface StatementTimeoutError extends Error {
  code: typeof STATEMENT_TIMEOUT_CODE;
  timeoutMs: number;
}

export function isStatementTimeout(err: unknown): err is StatementTimeoutError {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === STATEMENT_TIMEOUT_CODE;
}

function statementTimeoutError(ms: number): StatementTimeoutError {
  // No " - " in the message: knex prefixes the statement with one, and enqueue-errors.ts cuts there.
  const err = new Error(`no answer to a statement within ${ms / 1000} s (statementTimeout); its connection was closed`) as StatementTimeoutError;
  err.code = STATEMENT_TIMEOUT_CODE;
  err.timeoutMs = ms;
  return err;
}

type Callback = (...result: unknown[]) => void;

/** A driver connection as the watchdog sees it: pg's Client and mysql2's Connection both fit. */
export interface WatchedConnection {
  query: (...args: any[]) => unknown;
  /** knex's mark of a connection its pool must destroy instead of handing it out again. */
  __knex__disposed?: unknown;
}

/**
 * Puts a timer on every statement sent on `conn` (while one is outstanding; an idle connection,
 * such as PostgreSQL's LISTEN connection between notifications, has none). When it fires, the
 * connection is marked for the pool to destroy and its socket is destroyed with the timeout error,
 * which the driver hands to the waiting statement (and to any queued behind it).
 *
 * The functions made per statement are made outside `watchedQuery`, each holding only the timer
 * and the callback: a callback wrapper made inside it tripled what each scavenge moved to the old
 * generation (PostgreSQL, 30,000 no-op tasks in process: 570 KB a scavenge against 217 KB with no
 * watchdog or with the wrapper made here), and with it the worker's resident memory.
 */
export function watchStatements(conn: WatchedConnection, statementMs: number, socketOf: () => { destroy(err?: Error): unknown } | undefined): void {
  const query = conn.query;
  const expire = () => {
    const err = statementTimeoutError(statementMs);
    conn.__knex__disposed = err;
    socketOf()?.destroy(err);
  };
  conn.query = function watchedQuery(this: unknown, ...args: unknown[]) {
    if (exempt.getStore() === true) return query.apply(this, args);
    const timer = setTimeout(expire, statementMs);
    // The callback is the last function argument (pg and mysql2 alike); without one, pg returns a promise.
    let at = args.length - 1;
    while (at >= 0 && typeof args[at] !== 'function') at--;
    if (at >= 0) {
      args[at] = clearingFirst(timer, args[at] as Callback);
      return query.apply(this, args);
    }
    const out = query.apply(this, args);
    if (out instanceof Promise) {
      const clear = clearing(timer);
      out.then(clear, clear);
    } else clearTimeout(timer);
    return out;
  };
}

/** `cb`, clearing `timer` before it runs. (Clearing a timer that has fired does nothing.) */
function clearingFirst(timer: NodeJS.Timeout, cb: Callback): Callback {
  return (...result: unknown[]) => {
    clearTimeout(timer);
    cb(...result);
  };
}

function clearing(timer: NodeJS.Timeout): () => void {
  return () => clearTimeout(timer);
}

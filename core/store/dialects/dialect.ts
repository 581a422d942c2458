/**
 * What differs between SQLite, MySQL/MariaDB and PostgreSQL, and nothing else: connection set-up,
 * the claim statement, insert-returning, index DDL and error classification. Everything portable
 * lives in `core/store/store.ts`.
 */
import type { Knex } from 'knex';
import type { DialectName } from '../../config/database-spec.js';
import type { CompleteItem } from './complete-sql.js';
import type { UniformRows } from './insert-rows.js';
import { isStatementTimeout, type Timeouts } from './timeouts.js';

export type Db = Knex | Knex.Transaction;

/** What a claim writes on each claimed row. */
export interface ClaimSet {
  workerId: string;
  /** Unique per claim statement; each row's claim token is `${token}:${id}`. */
  token: string;
  nowMs: number;
  leaseUntilMs: number;
}

/**
 * How an error from the driver should be handled:
 * - `retry`: a deadlock, lock wait timeout or SQLITE_BUSY: run the whole transaction again;
 * - `connection`: the database is unreachable; the worker backs off and keeps its results;
 * - `unique`: a unique constraint was violated;
 * - `missing-table`: the schema is not there (not migrated, or the wrong table prefix).
 */
export type ErrorKind = 'retry' | 'connection' | 'unique' | 'missing-table';

/**
 * What a claim takes: one query of candidate ids (in claim order, limited), or several ordered,
 * limited queries (`members`, each selecting id, priority and run_at) whose union the dialect
 * orders and cuts to `limit` (a per-queue claim, one index scan per queue). `consecutive`
 * members are ranges of the claim order, in that order (a claim from the cursor,
 * store/claim-cursor.ts): the dialect takes from each in turn, and stops reading once it has
 * `limit` rows.
 */
export type ClaimCandidates = Knex.QueryBuilder | { members: Knex.QueryBuilder[]; limit: number; ordering: 'ASC' | 'DESC'; consecutive?: boolean };

export function isUnion(c: ClaimCandidates): c is Exclude<ClaimCandidates, Knex.QueryBuilder> {
  return 'members' in c && Array.isArray((c as { members?: unknown }).members);
}

/** `ORDER BY` of claim order over a union's columns. */
export function claimOrderSql(ordering: 'ASC' | 'DESC'): string {
  return `ORDER BY priority ${ordering}, run_at ASC, id ASC`;
}

/** How many bytes of results one statement may carry on this database (see storable.ts). */
export interface StatementLimit {
  maxBytes: number;
  name: string;
  resultBytes(returnValue: string): number;
}

export interface Dialect {
  readonly name: DialectName;
  /**
   * Our own pool's settings and per-connection set-up, with the bounds on every wait for the
   * server (timeouts.ts; SQLite, with no server, ignores them).
   */
  prepareConfig(config: Knex.Config, timeouts: Timeouts): Knex.Config;
  /** Set-up for an application's own knex instance, which we must not reconfigure wholesale. */
  prepareExternal(knex: Knex): void;
  /**
   * Set-up before writing in a transaction the application passed in (its connection may not
   * have been prepared by us). Absent where nothing is needed.
   */
  prepareForeignTransaction?(trx: Knex.Transaction): Promise<void>;
  /**
   * Claims the rows `candidates` selects (ids, in claim order, already limited) and returns them
   * as they are after the claim (attempts counted, lease taken), in any order.
   */
  claim(knex: Knex, table: string, candidates: ClaimCandidates, set: ClaimSet): Promise<Record<string, unknown>[]>;
  /** The rows of every member query (each ordered and limited on its own), in one round trip. */
  unionAll(db: Db, members: readonly Knex.QueryBuilder[]): Promise<Record<string, unknown>[]>;
  /**
   * A statement listing the keys of unlocked tasks due by `nowMs` (one column, `name`), in key
   * order: after `after` (from the first key when null), up to `upTo` (inclusive) when given; at
   * most `limit`. Absent where the portable walk of store/key-walk.ts (a recursive statement, one
   * index seek per key) is fast.
   */
  dueKeys?(table: string, after: string | null, upTo: string | null, limit: number, nowMs: number): { sql: string; bindings: Knex.RawBinding[] };
  /**
   * Whether one statement writes at a time across the whole database, every connection and
   * process, each on the latest committed state (SQLite's single writer): a condition in a
   * claiming statement then holds for the rows it claims with no lock taken before it.
   */
  oneWriter?: boolean;
  /**
   * Whether the claim index keeps the entries of claimed and finished tasks until the server
   * cleans them up (PostgreSQL's vacuum, InnoDB's purge), which an old transaction can hold off
   * for as long as it stays open: the plain claim then reads on from where its last one ended
   * rather than from the start of the index (store/claim-cursor.ts).
   */
  claimFromCursor?: boolean;
  /** Whether the database has `LEFT JOIN LATERAL` (the keyed claim joins each key's first task so). */
  lateralJoins?: boolean;
  /**
   * The table pinned to its claim index (an index hint), for the reads that must go through it in
   * claim order where the table's name alone lets the optimizer pick another index or a scan: the
   * keyed claim's seek for each key's first task, the claim from the cursor. Absent: the table.
   */
  claimIndexSource?(db: Db, table: string): Knex.Raw;
  /**
   * The table pinned to its primary key, for writes to listed ids whose other conditions an index
   * also serves (a lease renewal's `locked_by`): the optimizer must not read that index instead.
   * Absent: the table.
   */
  byIdSource?(db: Db, table: string): Knex.Raw;
  /**
   * Whether a range read of an index goes on past the range's end through entries that wait for
   * clean-up (InnoDB checks the end only on a live entry): then a range that ends where such
   * entries begin reads them all, and the claim from the cursor first asks which of its ranges
   * hold anything (store/claim-cursor.ts).
   */
  readsPastRangeEnd?: boolean;
  /**
   * Whether the plain claim splits its reads by priority (store/claim-priorities.ts): where a
   * read across priorities walks every not-due task of those it passes (beside a million not-due
   * tasks of a higher priority: MariaDB 610 ms a claim, PostgreSQL 26 ms; SQLite 0.9 ms, where
   * the split costs more than it saves).
   */
  seeksPerPriority?: boolean;
  /**
   * The distinct queues of unlocked tasks (those of unkeyed tasks at least; a queue listed in
   * excess only costs the claim an empty member). Absent where the portable walk of
   * store/claim.ts (a recursive statement, one index seek per queue) is fast.
   */
  queuesWithTasks?(db: Db, table: string): Promise<string[]>;
  /** An identifier quoted for this database. */
  quote(identifier: string): string;
  /** The rows of a `knex.raw` result. */
  rows(result: unknown): Record<string, unknown>[];
  /** Tells listening workers the queues table changed (PostgreSQL's NOTIFY); absent elsewhere. */
  notifyQueuesChanged?(knex: Knex, tables: { tasks: string }): Promise<void>;
  /** Sends `payload` to the listening workers (a listener's self-test); present where `listen` is. */
  notify?(knex: Knex, tables: { tasks: string }, payload: string): Promise<void>;
  /**
   * Records successes: copies each pending row (matched by id and claim token) into the completed
   * table with its finish time and return value, and deletes it, atomically. Returns the ids done;
   * the others had lost their lease. Null when the two steps disagreed (a lease changed in
   * between): the caller then settles them one by one.
   */
  completeMany(knex: Knex, tables: { tasks: string; completed: string }, items: readonly CompleteItem[]): Promise<string[] | null>;
  /**
   * Inserts rows (objects, or columns and value arrays) and returns their ids as strings, in
   * order. Several rows go in multi-row statements; call it inside a transaction for those.
   */
  insertReturningIds(db: Db, table: string, rows: readonly Record<string, unknown>[] | UniformRows): Promise<string[]>;
  /** Schema that only this database needs, created by the initial migration (and dropped by its down). */
  extraSchema(knex: Knex, tables: { tasks: string; completed: string }, direction: 'up' | 'down'): Promise<void>;
  /**
   * Calls `onTask` when new tasks are inserted (PostgreSQL's LISTEN/NOTIFY), so idle workers
   * wake at once instead of at their next poll; returns the function that stops listening. The
   * payload is '' for new tasks and 'queues' when a queue was paused, resumed or limited.
   * A listen that fails gives back the connection it took. Absent where the database cannot tell: polling is then the only way (and always the
   * fallback: a lost notification costs one poll).
   */
  listen?(knex: Knex, tables: { tasks: string }, onTask: (payload: string) => void, onError: (err: unknown) => void): Promise<() => Promise<void>>;
  /** Creates an index; `where` makes it partial where the database supports that. */
  createIndex(knex: Knex, table: string, name: string, columnsSql: string, where?: string): Promise<void>;
  /**
   * The largest statement the server accepts (`maxBytes`, the setting's `name`), and the bytes a
   * return value takes in the statement that records a success. Absent where no result can reach
   * the limit (PostgreSQL holds 1 GB per value, SQLite a billion bytes per statement).
   */
  statementLimit?(knex: Knex): Promise<StatementLimit>;
  /** The database server's clock, in epoch ms: workers keep their clocks on it (worker/clock-sync.ts). */
  serverTimeMs(knex: Knex): Promise<number>;
  classifyError(err: unknown): ErrorKind | null;
}

export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown } | null;
  return e && typeof e === 'object' ? String(e.code ?? '') : '';
}

/** Network errors that every driver reports with Node's own codes. */
export const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/**
 * pg's words when its connectionTimeoutMillis (the connectTimeout setting) ran out: the bare
 * `timeout expired` it destroys the socket with (pg 8.x, no code), or, in newer versions,
 * `Connection terminated due to connection timeout`.
 */
export function isPgConnectTimeout(message: string): boolean {
  return message === 'timeout expired' || /due to connection timeout/i.test(message);
}

/** True for knex's pool-acquire timeout and for network failures. */
export function isConnectionFailure(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const name = (err as Error).name;
  if (name === 'KnexTimeoutError') return true;
  if (isStatementTimeout(err)) return true;
  if (NETWORK_CODES.has(errorCode(err))) return true;
  const msg = String((err as Error).message ?? '');
  if (isPgConnectTimeout(msg)) return true;
  return /Connection terminated|connection is closed|Can't add new command when connection is in closed state|Cannot enqueue|server has gone away|Connection lost|read ECONNRESET|write EPIPE|Client was closed and is not queryable|terminating connection/i.test(
    msg,
  );
}

export class CompletionMismatch extends Error {}

/**
 * The union of ordered, limited member queries. SQLite allows ORDER BY and LIMIT in a compound
 * member only inside a subquery; PostgreSQL and MySQL accept parenthesised members.
 */
export function unionSql(dialect: DialectName, members: readonly Knex.QueryBuilder[]): { sql: string; bindings: Knex.RawBinding[] } {
  const parts = members.map((m) => m.toSQL());
  const wrap = (sql: string) => (dialect === 'sqlite' ? `SELECT * FROM (${sql})` : `(${sql})`);
  return { sql: parts.map((p) => wrap(p.sql)).join(' UNION ALL '), bindings: parts.flatMap((p) => p.bindings as Knex.RawBinding[]) };
}

/** Rows from `knex.raw`: sqlite gives an array, mysql2 `[rows, fields]`, pg `{ rows }`. */
export function rawRows(dialect: DialectName, result: unknown): Record<string, unknown>[] {
  if (dialect === 'postgres') return (result as { rows: Record<string, unknown>[] }).rows;
  if (dialect === 'mysql') return (result as [Record<string, unknown>[]])[0];
  return result as Record<string, unknown>[];
}

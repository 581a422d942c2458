/**
 * One-row inserts on SQLite through statements prepared once per connection, outside the query
 * builder. A single enqueue is one autocommit INSERT, and building, compiling and preparing it
 * each time cost more than SQLite's own work: measured on this project's bench machine, 8.8k
 * single enqueues a second through knex, 11-12k this way, and 16-25k for the bare INSERT prepared
 * once (docs/databases.md, "Drivers: sqlite3 and better-sqlite3").
 *
 * Both drivers knex knows are served: node-sqlite3 (asynchronous statements; our own pools use it)
 * and better-sqlite3 (synchronous; an application's own knex instance may use it). The connection
 * is taken from knex's pool for the statement, so it never runs inside someone else's transaction,
 * and knex's `query`, `query-response` and `query-error` events still see it.
 */
import type { Knex } from 'knex';

type Binding = string | number | bigint | null;

/** node-sqlite3's Statement, as used here. */
interface AsyncStatement {
  run(params: Binding[], cb: (this: { lastID: number }, err: Error | null) => void): void;
  finalize(cb: () => void): void;
}

/** node-sqlite3's Database, as used here. */
interface AsyncDb {
  prepare(sql: string, cb: (err: Error | null) => void): AsyncStatement;
  close(cb?: (err: Error | null) => void): void;
}

/** better-sqlite3's Database, as used here. */
interface SyncDb {
  prepare(sql: string): { run(...params: Binding[]): { lastInsertRowid: number | bigint } };
  pragma: unknown;
}

/** knex's client, as used here: its pool and its events. */
interface PoolClient {
  acquireConnection(): Promise<object & { __knexUid?: string }>;
  releaseConnection(conn: object): unknown;
  emit(event: string, ...args: unknown[]): boolean;
}

/** Statements kept per connection: an insert's column list varies with the options a call sets. */
export const MAX_STATEMENTS = 32;

/** node-sqlite3 statements by connection, each ready once its prepare has succeeded. */
const asyncCache = new WeakMap<AsyncDb, Map<string, Promise<AsyncStatement>>>();

/** better-sqlite3 statements by connection (its close finalizes them itself). */
const syncCache = new WeakMap<SyncDb, Map<string, ReturnType<SyncDb['prepare']>>>();

function isSync(conn: object): conn is SyncDb {
  return typeof (conn as { pragma?: unknown }).pragma === 'function';
}

/**
 * node-sqlite3 refuses to close a connection that has statements not finalized (SQLITE_BUSY), and
 * knex's pool closes connections itself: the first statement prepared on a connection makes its
 * close finalize them first, whoever closes it.
 */
function statementsOf(db: AsyncDb): Map<string, Promise<AsyncStatement>> {
  const stmts = asyncCache.get(db);
  if (stmts) return stmts;
  const own = new Map<string, Promise<AsyncStatement>>();
  asyncCache.set(db, own);
  const close = db.close.bind(db);
  db.close = (cb) => {
    const all = [...own.values()];
    own.clear();
    void Promise.allSettled(all).then(async (settled) => {
      for (const s of settled) if (s.status === 'fulfilled') await new Promise<void>((done) => s.value.finalize(done));
      close(cb);
    });
  };
  return own;
}

function preparedAsync(db: AsyncDb, sql: string): Promise<AsyncStatement> {
  const stmts = statementsOf(db);
  let st = stmts.get(sql);
  if (st) return st;
  if (stmts.size >= MAX_STATEMENTS) {
    const [oldest, old] = stmts.entries().next().value as [string, Promise<AsyncStatement>];
    stmts.delete(oldest);
    void old.then((s) => s.finalize(() => {}), () => {});
  }
  // A statement whose prepare failed never answers a run queued on it: wait for the prepare.
  st = new Promise<AsyncStatement>((resolve, reject) => {
    const s = db.prepare(sql, (err) => {
      if (err) {
        stmts.delete(sql);
        reject(err);
      } else resolve(s);
    });
  });
  stmts.set(sql, st);
  return st;
}

function runSync(db: SyncDb, sql: string, params: Binding[]): number | bigint {
  let stmts = syncCache.get(db);
  if (!stmts) syncCache.set(db, (stmts = new Map()));
  let st = stmts.get(sql);
  if (!st) {
    if (stmts.size >= MAX_STATEMENTS) stmts.delete(stmts.keys().next().value as string);
    st = db.prepare(sql);
    stmts.set(sql, st);
  }
  return st.run(...params).lastInsertRowid;
}

async function runAsync(db: AsyncDb, sql: string, params: Binding[]): Promise<number> {
  const st = await preparedAsync(db, sql);
  return new Promise<number>((resolve, reject) => {
    st.run(params, function (err) {
      if (err) reject(err);
      else resolve(this.lastID);
    });
  });
}

/** Values as both drivers bind them: better-sqlite3 refuses booleans, which knex stores as 1 and 0. */
function binding(v: unknown): Binding {
  return typeof v === 'boolean' ? (v ? 1 : 0) : (v as Binding);
}

/**
 * Whether the row holds only values both drivers bind as knex would (strings, numbers, bigints,
 * booleans, null), at least one. A task row always does; anything else (a Date, a Buffer, an
 * object, undefined, no column at all) goes through knex, which knows its conversions.
 */
export function preparable(row: Record<string, unknown>): boolean {
  const values = Object.values(row);
  return values.length > 0 && values.every((v) => v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean');
}

let queries = 0;

const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;

/**
 * Inserts one row in autocommit and returns its id. `knex` is an instance, never a transaction:
 * its pool lends the connection for this statement alone. The row must be `preparable`.
 */
export async function insertPrepared(knex: Knex, table: string, row: Record<string, unknown>): Promise<string> {
  const columns = Object.keys(row);
  const sql = `INSERT INTO ${quote(table)} (${columns.map(quote).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
  const bindings = columns.map((c) => binding(row[c]));
  const client = knex.client as unknown as PoolClient;
  const conn = await client.acquireConnection();
  // As knex's own: a query id pairs the events of one statement; the response is the insert's.
  const query = { __knexUid: conn.__knexUid, __knexQueryUid: `bgtasks-prepared-${++queries}`, method: 'insert', sql, bindings, prepared: true };
  try {
    client.emit('query', query);
    const id = isSync(conn) ? runSync(conn, sql, bindings) : await runAsync(conn as unknown as AsyncDb, sql, bindings);
    client.emit('query-response', [id], query);
    return String(id);
  } catch (err) {
    client.emit('query-error', err, query);
    throw err;
  } finally {
    client.releaseConnection(conn);
  }
}

/**
 * SQLite: WAL, a busy timeout and one connection per process. Several processes may share the file
 * (the web app enqueuing while workers run), so every write must wait for the lock instead of
 * failing: the claim is one `UPDATE … RETURNING` statement, and every write transaction's first
 * statement is a write (a transaction that reads first cannot wait for the lock: it fails with
 * SQLITE_BUSY_SNAPSHOT whatever the busy timeout).
 */
import type { Knex } from 'knex';
import { errorCode, isUnion, rawRows, unionSql, type ClaimSet, type Db, type Dialect, type ErrorKind } from './dialect.js';
import { completedInsertSelect, itemsJson } from './complete-sql.js';
import { chunks, splitChunk, uniformRows } from './insert-rows.js';
import { insertPrepared, preparable } from './sqlite-prepared.js';
import { TASK_COLUMNS, taskRecord } from '../rows.js';

const q = (id: string) => `"${id}"`;

/** The claim's RETURNING: every column of a claimed row as one JSON array (see TASK_COLUMNS). */
const CLAIM_RETURNING = `json_array(${TASK_COLUMNS.map(q).join(', ')}) AS j`;

/** Milliseconds a statement waits for another process's write lock before SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 15_000;

const PRAGMAS = [
  'PRAGMA journal_mode = WAL',
  'PRAGMA synchronous = NORMAL',
  `PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`,
  'PRAGMA foreign_keys = ON',
];

type SqliteConn = {
  exec?: (sql: string, cb?: (err: Error | null) => void) => unknown;
  configure?: (option: string, value: number) => void;
  pragma?: (sql: string) => unknown;
};

function setUp(conn: SqliteConn, done: (err: Error | null, conn: unknown) => void): void {
  if (typeof conn.pragma === 'function') {
    // better-sqlite3: synchronous API.
    try {
      for (const p of PRAGMAS) conn.pragma(p.replace(/^PRAGMA /, ''));
      done(null, conn);
    } catch (err) {
      done(err as Error, conn);
    }
    return;
  }
  conn.exec!(PRAGMAS.join(';\n'), (err) => done(err, conn));
}

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  oneWriter: true,

  // SQLite: no server, so no connect or statement bound; a statement waits at most the busy
  // timeout for another process's write lock.
  prepareConfig(config) {
    const pool = { ...(config.pool ?? {}) };
    const userAfterCreate = pool.afterCreate as ((conn: unknown, done: (e: Error | null, c: unknown) => void) => void) | undefined;
    return {
      ...config,
      useNullAsDefault: true,
      // One connection: statements of this process queue in the pool instead of contending for the
      // file lock with each other.
      pool: {
        ...pool,
        min: 1,
        max: 1,
        afterCreate(conn: SqliteConn, done: (err: Error | null, conn: unknown) => void) {
          setUp(conn, (err, c) => (err || !userAfterCreate ? done(err, c) : userAfterCreate(c, done)));
        },
      },
    };
  },

  prepareExternal(knex) {
    // The application's pool lacks our pragmas. The busy timeout is what keeps SQLITE_BUSY away
    // from callers; set it on each connection the pool creates (synchronous in both drivers).
    const pool = (knex.client as { pool?: { on?: (ev: string, fn: (id: unknown, conn: SqliteConn) => void) => void } }).pool;
    pool?.on?.('createSuccess', (_id, conn) => {
      if (typeof conn.configure === 'function') conn.configure('busyTimeout', SQLITE_BUSY_TIMEOUT_MS);
      else if (typeof conn.pragma === 'function') conn.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    });
  },

  async prepareForeignTransaction(trx) {
    // The caller's connection may lack our busy timeout; without it a write that meets another
    // process's lock fails at once instead of waiting.
    await trx.raw(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  },

  async claim(knex, table, candidates, set: ClaimSet) {
    // SQLite: RETURNING gives the rows in no particular order; the store sorts them. A union's
    // members are read in one statement (no row locks: the write lock serialises claims).
    let ids: Knex.QueryBuilder;
    if (isUnion(candidates)) {
      const u = unionSql('sqlite', candidates.members);
      const dir = candidates.ordering === 'ASC' ? 'asc' : 'desc';
      ids = knex
        .select('id')
        .from(knex.raw(`(${u.sql})`, u.bindings))
        .orderBy([{ column: 'priority', order: dir }, { column: 'run_at', order: 'asc' }, { column: 'id', order: 'asc' }])
        .limit(candidates.limit);
    } else {
      ids = candidates;
    }
    const update = () =>
      knex(table)
        .whereIn('id', ids.clone())
        .update({
          locked_by: set.workerId,
          claim_token: knex.raw(`? || id`, [`${set.token}:`]),
          locked_at: set.nowMs,
          locked_until: set.leaseUntilMs,
          attempts: knex.raw('attempts + 1'),
        });
    try {
      // One JSON text per row instead of a driver-built object of 29 columns (see TASK_COLUMNS).
      const rows = (await update().returning(knex.raw(CLAIM_RETURNING) as unknown as string)) as Array<{ j: string }>;
      return rows.map((r) => taskRecord(JSON.parse(r.j) as unknown[]));
    } catch (err) {
      // A BLOB (only another program can store one) has no JSON form, and the failed statement
      // changed nothing: claim the same rows again the plain way.
      if (!/JSON cannot hold BLOB/i.test((err as Error)?.message ?? '')) throw err;
      return (await update().returning('*')) as Record<string, unknown>[];
    }
  },

  async unionAll(db, members) {
    const u = unionSql('sqlite', members);
    return rawRows('sqlite', await db.raw(u.sql, u.bindings));
  },

  quote: q,

  rows: (result) => rawRows('sqlite', result),

  async completeMany(knex, tables, items) {
    // SQLite: json_each feeds every item through one bound parameter; the schema's trigger deletes
    // each copied pending row in the same statement (see extraSchema).
    const sql =
      completedInsertSelect(tables.completed, q, { finishedAt: "json_extract(j.value, '$[2]')", returnValue: "json_extract(j.value, '$[3]')", workerId: "json_extract(j.value, '$[4]')" }) +
      ` FROM json_each(?) j JOIN ${q(tables.tasks)} t ON t.id = json_extract(j.value, '$[0]') AND t.claim_token = json_extract(j.value, '$[1]') RETURNING task_id`;
    const rows = (await knex.raw(sql, [itemsJson(items)])) as Array<{ task_id: unknown }>;
    return rows.map((r) => String(r.task_id));
  },

  async insertReturningIds(db: Db, table, rows) {
    if (Array.isArray(rows) && rows.length === 1) {
      // SQLite: the driver reports the new row id; RETURNING would cost more. Outside a
      // transaction the statement is prepared once per connection (sqlite-prepared.ts).
      if (!(db as Knex.Transaction).isTransaction && preparable(rows[0]!)) return [await insertPrepared(db as Knex, table, rows[0]!)];
      const [id] = (await db(table).insert(rows[0]!)) as number[];
      return [String(id)];
    }
    // The rows travel as one JSON document read by json_each (thousands of bound parameters cost
    // far more to bind), one INSERT per chunk; values shared by every row are bound once. Its rows
    // get consecutive ids ending at last_insert_rowid(): one statement is never interleaved.
    const { columns, values } = uniformRows(rows);
    const ids: string[] = [];
    for (const chunk of chunks(values, 5000)) {
      const { sources, constants, perRow } = splitChunk(columns, chunk);
      const sql =
        `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) ` +
        `SELECT ${sources.map((s) => ('at' in s ? `json_extract(value, '$[${s.at}]')` : '?')).join(', ')} FROM json_each(?) ORDER BY key`;
      await db.raw(sql, [...constants, JSON.stringify(perRow)] as Knex.RawBinding[]);
      const [{ id }] = (await db.raw('SELECT last_insert_rowid() AS id')) as Array<{ id: number }>;
      for (let i = chunk.length - 1; i >= 0; i--) ids.push(String(id - i));
    }
    return ids;
  },

  async extraSchema(knex, tables, direction) {
    // SQLite: recording a success is then one autocommit statement. The INSERT … SELECT copies
    // the pending row matched by id and claim token, and this trigger deletes that row in the same
    // statement, under the same write lock. Every other path deletes the pending row first, so
    // for them the trigger finds nothing.
    const name = q(`${tables.completed}_removes_task`);
    if (direction === 'down') {
      await knex.raw(`DROP TRIGGER IF EXISTS ${name}`);
      return;
    }
    await knex.raw(`CREATE TRIGGER ${name} AFTER INSERT ON ${q(tables.completed)} BEGIN DELETE FROM ${q(tables.tasks)} WHERE id = NEW.task_id; END`);
  },

  async createIndex(knex, table, name, columnsSql, where) {
    await knex.raw(`CREATE INDEX ${name} ON ${table} (${columnsSql})${where ? ` WHERE ${where}` : ''}`);
  },

  async serverTimeMs() {
    // SQLite runs in this process: its clock is ours.
    return Date.now();
  },

  classifyError(err): ErrorKind | null {
    const code = errorCode(err);
    const msg = String((err as Error | null)?.message ?? '');
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || /SQLITE_BUSY|database is locked/.test(msg)) return 'retry';
    if (code === 'SQLITE_CONSTRAINT' && /UNIQUE|PRIMARY KEY/i.test(msg)) return 'unique';
    if (/no such table/i.test(msg)) return 'missing-table';
    // No network, but a pool: its one connection stayed in use past knex's acquireConnectionTimeout
    // (an application's transaction held open on the same knex). Transient, as an outage is.
    if ((err as Error | null)?.name === 'KnexTimeoutError') return 'connection';
    return null;
  },
};

export type { Knex };

/**
 * LONGTX-01's instruments: a transaction held open the way a long report or a forgotten session
 * holds one, and what it costs the task table (dead row versions that cannot be removed while it
 * is open).
 *
 * - PostgreSQL: a REPEATABLE READ transaction that has read something keeps its snapshot, so its
 *   xmin is the vacuum horizon of the whole database: no row version deleted or updated after it
 *   started can be removed, by autovacuum or by page pruning, until it ends.
 * - MariaDB/MySQL: a transaction started WITH CONSISTENT SNAPSHOT under REPEATABLE READ keeps its
 *   read view, so InnoDB's purge cannot remove the undo log or the delete-marked index records
 *   written after it: the history list grows (server-wide).
 *
 * The holder uses its own connection of the raw driver, outside the library's pool.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { rawRows, type BenchTables } from './databases.js';

export interface Holder {
  /** What the server says about the held transaction now (its xmin age, or how long it is open). */
  state(): Promise<string>;
  /** Commits it and closes the connection. */
  release(): Promise<void>;
}

/** Ends the held transaction: COMMIT, then the connection is closed whatever the COMMIT did. */
async function commitAndClose(c: { query(sql: string): Promise<unknown>; end(): Promise<void> }): Promise<void> {
  try {
    await c.query('COMMIT');
  } finally {
    await c.end().catch(() => {});
  }
}

/** Opens the long transaction on `url`: it reads the completed table once and stays open. */
export async function holdTransaction(db: 'mysql' | 'postgres', url: string, readTable: string): Promise<Holder> {
  if (db === 'postgres') {
    const c = new pg.Client({ connectionString: url, application_name: 'bench-long-transaction' });
    c.on('error', () => {});
    await c.connect();
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await c.query(`SELECT count(*) FROM "${readTable}"`);
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    return {
      async state() {
        // Asked on the same connection would be a statement of the held transaction: fine, it
        // changes nothing, but a fresh client shows what the server sees of it.
        const o = new pg.Client({ connectionString: url, application_name: 'bench-long-transaction-probe' });
        o.on('error', () => {});
        await o.connect();
        try {
          const r = await o.query<{ xmin_age: number | null; state: string | null }>(
            'SELECT age(backend_xmin) AS xmin_age, state FROM pg_stat_activity WHERE pid = $1',
            [pid],
          );
          const row = r.rows[0];
          if (!row || row.xmin_age === null) throw new Error(`the held transaction (backend ${pid}) holds no xmin: ${JSON.stringify(row)}`);
          return `backend ${pid} ${row.state}, xmin age ${row.xmin_age} transactions`;
        } finally {
          await o.end().catch(() => {});
        }
      },
      release: () => commitAndClose(c),
    };
  }
  const c = await mysql.createConnection({ uri: url });
  c.on('error', () => {});
  await c.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
  await c.query(`SELECT count(*) FROM \`${readTable}\``);
  const id = c.threadId;
  return {
    async state() {
      const o = await mysql.createConnection({ uri: url });
      try {
        const [rows] = (await o.query(
          'SELECT trx_started, TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS open_s, trx_isolation_level AS iso FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ?',
          [id],
        )) as unknown as [Array<{ open_s: number; iso: string }>];
        const row = rows[0];
        if (!row) throw new Error(`the held transaction (connection ${id}) is not open`);
        return `connection ${id}, ${row.iso}, open ${row.open_s} s`;
      } finally {
        await o.end().catch(() => {});
      }
    },
    release: () => commitAndClose(c),
  };
}

/** What the task table carries besides its live rows, at one moment. */
export interface DeadRows {
  atMs: number;
  /**
   * PostgreSQL: n_dead_tup of the task table (pg_stat_user_tables; the statistics lag by up to a
   * second). MariaDB: the history list length (undo logs not yet purged, server-wide).
   */
  dead: number;
  /** PostgreSQL: n_live_tup; MariaDB: null. */
  live: number | null;
  /** The task table's size on disk: PostgreSQL heap (pg_relation_size) and, apart, its indexes; MariaDB its .ibd file. */
  tableBytes: number;
  indexBytes: number | null;
  /** PostgreSQL: autovacuum runs of the task table so far; MariaDB: null. */
  autovacuums: number | null;
}

export async function sampleDeadRows(t: BenchTables): Promise<DeadRows> {
  const atMs = Date.now();
  if (t.db === 'postgres') {
    const [r] = rawRows(
      'postgres',
      await t.knex.raw(
        `SELECT n_dead_tup AS dead, n_live_tup AS live, autovacuum_count AS av,
                pg_relation_size(relid) AS heap, pg_indexes_size(relid) AS idx
           FROM pg_stat_user_tables WHERE relname = ?`,
        [t.tasks],
      ),
    );
    return { atMs, dead: Number(r?.dead), live: Number(r?.live), tableBytes: Number(r?.heap), indexBytes: Number(r?.idx), autovacuums: Number(r?.av) };
  }
  const [h] = rawRows('mysql', await t.knex.raw(`SELECT count AS n FROM information_schema.INNODB_METRICS WHERE name = 'trx_rseg_history_len'`));
  const [f] = rawRows(
    'mysql',
    await t.knex.raw('SELECT ALLOCATED_SIZE AS bytes FROM information_schema.INNODB_SYS_TABLESPACES WHERE NAME = CONCAT(DATABASE(), ?)', [`/${t.tasks}`]),
  );
  return { atMs, dead: Number(h?.n), live: null, tableBytes: Number(f?.bytes), indexBytes: null, autovacuums: null };
}

/** One statement shape's share of the time, from pg_stat_statements or the performance schema. */
export interface StatementCost {
  /** The normalised text, shortened. */
  text: string;
  calls: number;
  totalMs: number;
  /** PostgreSQL: shared buffers hit or read per call; MariaDB: rows examined per call. */
  perCall: number;
}

/** Forgets what the statement statistics have counted so far. */
export async function resetStatements(t: BenchTables): Promise<void> {
  if (t.db === 'postgres') await t.knex.raw('SELECT pg_stat_statements_reset()');
  else await t.knex.raw('TRUNCATE TABLE performance_schema.events_statements_summary_by_digest');
}

const shorten = (sql: string) => sql.replace(/\s+/g, ' ').trim().slice(0, 160);

/** The `n` statement shapes that took the most time since the last reset, in this database. */
export async function topStatements(t: BenchTables, n: number): Promise<StatementCost[]> {
  if (t.db === 'postgres') {
    const rows = rawRows(
      'postgres',
      await t.knex.raw(
        `SELECT query, calls, total_exec_time AS ms, (shared_blks_hit + shared_blks_read)::float8 / GREATEST(calls, 1) AS blks
           FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          ORDER BY total_exec_time DESC LIMIT ?`,
        [n],
      ),
    );
    return rows.map((r) => ({ text: shorten(String(r.query)), calls: Number(r.calls), totalMs: Number(r.ms), perCall: Number(r.blks) }));
  }
  const rows = rawRows(
    'mysql',
    await t.knex.raw(
      `SELECT DIGEST_TEXT AS query, COUNT_STAR AS calls, SUM_TIMER_WAIT / 1e9 AS ms, SUM_ROWS_EXAMINED / GREATEST(COUNT_STAR, 1) AS examined
         FROM performance_schema.events_statements_summary_by_digest WHERE SCHEMA_NAME = DATABASE()
        ORDER BY SUM_TIMER_WAIT DESC LIMIT ?`,
      [n],
    ),
  );
  return rows.map((r) => ({ text: shorten(String(r.query)), calls: Number(r.calls), totalMs: Number(r.ms), perCall: Number(r.examined) }));
}

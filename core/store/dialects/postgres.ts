/**
 * PostgreSQL: the claim is one statement, a `FOR UPDATE SKIP LOCKED` CTE feeding an UPDATE. The
 * CTE is used rather than `WHERE id IN (subquery)` because PostgreSQL may re-run an IN-subquery
 * with LIMIT and claim more rows than asked for; a locking CTE is evaluated exactly once.
 */
import type { Knex } from 'knex';
import { claimOrderSql, errorCode, isConnectionFailure, isUnion, rawRows, unionSql, type ClaimSet, type Db, type Dialect, type ErrorKind } from './dialect.js';
import { completedInsertSelect } from './complete-sql.js';
import { PG_TYPES, splitChunk, uniformRows } from './insert-rows.js';
import { watchStatements, withConnectTimeout, type WatchedConnection } from './timeouts.js';

const q = (id: string) => `"${id}"`;

/** pg's Client, as much as the statement watchdog needs. */
interface PgClient extends WatchedConnection {
  connection?: { stream?: { destroy(err?: Error): unknown } };
}

interface PgConnection {
  query(sql: string): Promise<unknown>;
  on(ev: string, fn: (...a: any[]) => void): void;
  off(ev: string, fn: (...a: any[]) => void): void;
}

/** The NOTIFY channel of a tasks table (its name; channels are identifiers). */
function channelName(tasksTable: string): string {
  return tasksTable.toLowerCase();
}

function channelLiteral(tasksTable: string): string {
  return `'${channelName(tasksTable).replace(/'/g, "''")}'`;
}

const RETRY_CODES = new Set(['40P01', '40001', '55P03']);
const CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300']);

export const postgresDialect: Dialect = {
  name: 'postgres',
  lateralJoins: true,
  claimFromCursor: true,
  seeksPerPriority: true,

  prepareConfig(config, timeouts) {
    const pool = { ...(config.pool ?? {}) };
    const userAfterCreate = pool.afterCreate as ((conn: unknown, done: (e: Error | null, c: unknown) => void) => void) | undefined;
    return {
      ...withConnectTimeout(config, timeouts, 'connectionTimeoutMillis', 'connectionString'),
      pool: {
        min: 0,
        max: 10,
        ...pool,
        afterCreate(conn: PgClient, done: (err: Error | null, c: unknown) => void) {
          // PostgreSQL: the bound is the client's, not a statement_timeout: that is session state
          // (SET, or a startup parameter PgBouncer refuses), and no help when packets are lost.
          watchStatements(conn, timeouts.statementMs, () => conn.connection?.stream);
          if (userAfterCreate) userAfterCreate(conn, done);
          else done(null, conn);
        },
      },
    };
  },

  prepareExternal() {},

  async claim(knex, table, candidates, set: ClaimSet) {
    // The rows are updated where the locking read found them (their ctid), never looked up again
    // by id: joined on id, the planner once chose, after an autovacuum, to answer each of the 256
    // lookups with a full scan of the (enqueued_at, id) index, whose second column is the id
    // (LONGTX-01, clean run: 10 s a claim, 3 million buffers). A row locked by this statement
    // cannot move before the update that follows in it.
    const tid = knex.raw('ctid AS bg_tid');
    // A union (per-queue claim) locks inside each member: FOR UPDATE is not allowed on a UNION.
    // Consecutive members need no sort: Append reads them in order, and LIMIT stops it reading
    // (and locking) once it has enough.
    const sub = isUnion(candidates)
      ? (() => {
          const parts = candidates.members.map((m) => m.clone().select(tid).forUpdate().skipLocked().toSQL());
          const orderBy = candidates.consecutive ? '' : `${claimOrderSql(candidates.ordering)} `;
          return {
            sql: `SELECT bg_tid FROM (${parts.map((p, i) => `SELECT * FROM (${p.sql}) m${i}`).join(' UNION ALL ')}) u ${orderBy}LIMIT ${Math.floor(candidates.limit)}`,
            bindings: parts.flatMap((p) => p.bindings),
          };
        })()
      : candidates.clone().select(tid).forUpdate().skipLocked().toSQL();
    const result = await knex.raw(
      `WITH c AS (${sub.sql})
       UPDATE ?? AS t SET locked_by = ?, claim_token = ? || t.id::text, locked_at = ?, locked_until = ?, attempts = t.attempts + 1
       WHERE t.ctid = ANY (ARRAY(SELECT bg_tid FROM c))
       RETURNING t.*`,
      [...sub.bindings, table, set.workerId, `${set.token}:`, set.nowMs, set.leaseUntilMs],
    );
    return (result as { rows: Record<string, unknown>[] }).rows;
  },

  async unionAll(db, members) {
    const u = unionSql('postgres', members);
    return rawRows('postgres', await db.raw(u.sql, u.bindings));
  },

  quote: q,

  rows: (result) => rawRows('postgres', result),

  async notifyQueuesChanged(knex, tables) {
    await knex.raw(`SELECT pg_notify(${channelLiteral(tables.tasks)}, 'queues')`);
  },

  async notify(knex, tables, payload) {
    await knex.raw(`SELECT pg_notify(${channelLiteral(tables.tasks)}, ?)`, [payload]);
  },

  async completeMany(knex, tables, items) {
    // PostgreSQL: one statement, atomic on its own: the DELETE's RETURNING feeds the INSERT, and
    // the inputs arrive as arrays (one bound parameter each). The DELETE names its ids (`= ANY`),
    // which only the primary key can serve (migration 012 made the (enqueued_at, id) index
    // partial), rather than joining the inputs: joined, the planner read the whole primary key
    // index for a settle when its statistics said the table was nearly empty (LONGTX-01: 0.9 s a
    // settle). Each row deleted is then paired with its input by its claim token, unique to one
    // claim of one task.
    const unique = [...new Map(items.map((i) => [i.token, i])).values()];
    const sql = `WITH v AS (SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[]) AS v(token, finished_at, rv, worker_id)),
      d AS (DELETE FROM ${q(tables.tasks)} WHERE id = ANY (?::bigint[]) AND claim_token = ANY (?::text[]) RETURNING *),
      t AS (SELECT d.*, v.finished_at AS bg_finished_at, v.rv AS bg_rv, v.worker_id AS bg_worker_id FROM d JOIN v ON v.token = d.claim_token)
      ${completedInsertSelect(tables.completed, q, { finishedAt: 't.bg_finished_at', returnValue: 't.bg_rv', workerId: 't.bg_worker_id' })} FROM t RETURNING task_id`;
    const tokens = unique.map((i) => i.token);
    const arrays = [tokens, unique.map((i) => i.finishedAt), unique.map((i) => i.returnValue), unique.map((i) => i.workerId), unique.map((i) => i.id), tokens];
    const r = await knex.raw(sql, arrays as unknown as Knex.RawBinding[]);
    return (r as { rows: Array<{ task_id: unknown }> }).rows.map((x) => String(x.task_id));
  },

  async insertReturningIds(db: Db, table, rows) {
    if (Array.isArray(rows) && rows.length === 1) {
      const out = (await db(table).insert(rows[0]!).returning('id')) as Array<{ id: number | string }>;
      return out.map((r) => String(r.id));
    }
    // PostgreSQL: every row in one statement, ids returned in insertion order. Values shared by
    // every row (a bulk() call's template) are bound once; each varying column travels as one
    // array parameter (unnest). The driver serialises an array element by element; the shared
    // values need not go through that once per row.
    const { columns, values } = uniformRows(rows);
    const { sources, constants, perRow } = splitChunk(columns, values);
    const varying = sources.flatMap((s, i) => ('at' in s ? [columns[i]!] : []));
    const select = sources.map((s, i) => ('at' in s ? `u.c${s.at}` : `?::${PG_TYPES[columns[i]!] ?? 'text'}`));
    const from = varying.length
      ? `unnest(${varying.map((c) => `?::${PG_TYPES[c] ?? 'text'}[]`).join(', ')}) AS u(${varying.map((_, i) => `c${i}`).join(', ')})`
      : 'generate_series(1, ?::integer) AS u';
    const arrays = varying.length ? varying.map((_, v) => perRow.map((r) => r[v])) : [values.length];
    const sql = `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) SELECT ${select.join(', ')} FROM ${from} RETURNING id`;
    const r = await db.raw(sql, [...constants, ...arrays] as unknown as Knex.RawBinding[]);
    return (r as { rows: Array<{ id: unknown }> }).rows.map((x) => String(x.id));
  },

  async extraSchema(knex, tables, direction) {
    // PostgreSQL: every statement that inserts tasks notifies the listening workers (on commit),
    // whoever inserts them: enqueue, bulk, a recurring successor, the application's own SQL.
    const fn = q(`${tables.tasks}_notify`);
    const trigger = q(`${tables.tasks}_notify`);
    if (direction === 'down') {
      await knex.raw(`DROP TRIGGER IF EXISTS ${trigger} ON ${q(tables.tasks)}`);
      await knex.raw(`DROP FUNCTION IF EXISTS ${fn}()`);
      return;
    }
    await knex.raw(
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify(${channelLiteral(tables.tasks)}, ''); RETURN NULL; END $$`,
    );
    await knex.raw(`CREATE TRIGGER ${trigger} AFTER INSERT ON ${q(tables.tasks)} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`);
  },

  async listen(knex, tables, onTask, onError) {
    // A connection of its own, held for as long as the worker runs (LISTEN is per session).
    const client = knex.client as { acquireConnection(): Promise<PgConnection>; releaseConnection(c: PgConnection): Promise<void> };
    const conn = await client.acquireConnection();
    const onNotification = (msg: { channel: string; payload?: string }) => {
      if (msg.channel === channelName(tables.tasks)) onTask(msg.payload ?? '');
    };
    const onLost = (err?: unknown) => onError(err ?? new Error('the LISTEN connection closed'));
    conn.on('notification', onNotification);
    conn.on('error', onLost);
    conn.on('end', onLost);
    const off = () => {
      conn.off('notification', onNotification);
      conn.off('error', onLost);
      conn.off('end', onLost);
    };
    try {
      await conn.query(`LISTEN ${q(channelName(tables.tasks))}`);
    } catch (err) {
      // Lost before the answer (an outage, the statement timeout): the connection still goes back,
      // and the pool discards it if it is broken. Kept, it stayed in use for good, and knex's destroy() waited for
      // it for ever (a worker that could not shut down after an outage).
      off();
      await client.releaseConnection(conn);
      throw err;
    }
    return async () => {
      off();
      try {
        await conn.query(`UNLISTEN ${q(channelName(tables.tasks))}`);
      } catch {
        // A closed connection has nothing to unlisten.
      }
      await client.releaseConnection(conn);
    };
  },

  async createIndex(knex, table, name, columnsSql, where) {
    await knex.raw(`CREATE INDEX ${name} ON ${table} (${columnsSql})${where ? ` WHERE ${where}` : ''}`);
  },

  async serverTimeMs(knex) {
    const r = await knex.raw('SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS t');
    return Number((r as { rows: Array<{ t: string }> }).rows[0]!.t);
  },

  classifyError(err): ErrorKind | null {
    const code = errorCode(err);
    if (RETRY_CODES.has(code)) return 'retry';
    if (code === '23505') return 'unique';
    if (code === '42P01') return 'missing-table';
    if (CONNECTION_CODES.has(code) || isConnectionFailure(err)) return 'connection';
    return null;
  },
};

export type { Knex };

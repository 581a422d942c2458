/**
 * MySQL 8 / MariaDB 10.6+: no UPDATE … RETURNING (MariaDB) and no INSERT … RETURNING (MySQL), so
 * the claim is a short transaction: SELECT … FOR UPDATE SKIP LOCKED, then UPDATE by id, with the
 * claimed values applied to the selected rows in memory. Concurrent batch claims deadlock now and
 * then under REPEATABLE READ; our own connections use READ COMMITTED (far fewer deadlocks), and the
 * store retries the ones that still happen.
 */
import type { Knex } from 'knex';
import { CompletionMismatch, errorCode, isConnectionFailure, isUnion, rawRows, unionSql, type ClaimSet, type Db, type Dialect, type ErrorKind, type StatementLimit } from './dialect.js';
import { completedInsertSelect, itemsJson } from './complete-sql.js';
import { chunks, PG_TYPES, splitChunk, uniformRows } from './insert-rows.js';
import { watchStatements, withConnectTimeout, type WatchedConnection } from './timeouts.js';

/** JSON_TABLE column types for the column kinds of insert-rows.ts. */
const MYSQL_TYPES: Record<string, string> = { text: 'LONGTEXT', bigint: 'BIGINT', integer: 'INT', boolean: 'BOOLEAN' };

const q = (id: string) => `\`${id}\``;

const RETRY_ERRNOS = new Set([1213, 1205]); // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
const CONNECTION_ERRNOS = new Set([2002, 2003, 2006, 2013, 1053, 1927, 1040, 4031]);

const autoIncConsecutive = new WeakMap<object, Promise<boolean>>();

/**
 * MySQL: a multi-row INSERT gets consecutive ids unless innodb_autoinc_lock_mode is 2
 * ("interleaved", MySQL 8's default); then we cannot derive the ids from the first one.
 */
function consecutiveIds(db: Db): Promise<boolean> {
  const key = (db as { client: object }).client;
  let p = autoIncConsecutive.get(key);
  if (!p) {
    p = db
      .raw('SELECT @@innodb_autoinc_lock_mode AS m')
      .then((r) => Number((r as [Array<{ m: unknown }>])[0][0]?.m) !== 2)
      .catch(() => false);
    autoIncConsecutive.set(key, p);
  }
  return p;
}

const packetLimits = new WeakMap<object, Promise<number>>();

/**
 * MySQL/MariaDB: a statement longer than max_allowed_packet (16 MiB by default on MariaDB 10.6+,
 * 64 MiB on MySQL 8) makes the server close the connection, which the driver reports as ECONNRESET,
 * like an outage. Read once per pool (a session cannot change it).
 */
function maxAllowedPacket(knex: Knex): Promise<number> {
  const key = (knex as { client: object }).client;
  let p = packetLimits.get(key);
  if (!p) {
    p = knex.raw('SELECT @@max_allowed_packet AS m').then((r) => Number((r as [Array<{ m: unknown }>])[0][0]?.m));
    p.catch(() => packetLimits.delete(key));
    packetLimits.set(key, p);
  }
  return p;
}

/**
 * The bytes a return value takes in the success statement: it travels inside the JSON document of
 * completeMany (JSON escapes `"` and `\`), which the driver quotes as a string literal (escaping
 * `\`, `"` and `'` again).
 */
function resultBytes(rv: string): number {
  let quoted = 0;
  let apostrophes = 0;
  for (let i = 0; i < rv.length; i++) {
    const c = rv.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) quoted++;
    else if (c === 0x27) apostrophes++;
  }
  return Buffer.byteLength(rv) + 3 * quoted + apostrophes + 4;
}

/** A pooled mysql2 connection (callback API), as knex's pool hands it out. */
interface MysqlConnection {
  query(sql: string, values: readonly unknown[], cb: (err: Error | null, rows: unknown) => void): void;
  destroy?(): void;
}

function query(conn: MysqlConnection, sql: string, values: readonly unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => conn.query(sql, values, (err, rows) => (err ? reject(err) : resolve(rows))));
}

/**
 * Runs `fn` in a transaction on a connection of knex's pool, without a knex transaction object.
 * The worker claims many times a second; a knex transaction builds a whole knex instance each
 * time (about 9 KB, measured), and those outlived their claims in V8's old generation.
 * When the configured database is itself a knex transaction, `BEGIN` on its connection would
 * commit it (MySQL ends an open transaction at BEGIN): then a nested knex transaction (a
 * savepoint) runs `fn` on that connection instead, as before.
 */
async function onOwnConnection<T>(knex: Knex, fn: (conn: MysqlConnection) => Promise<T>): Promise<T> {
  type PoolClient = { acquireConnection(): Promise<MysqlConnection>; releaseConnection(c: MysqlConnection): Promise<unknown> };
  if ((knex as { isTransaction?: boolean }).isTransaction) {
    return knex.transaction(async (trx) => fn(await (trx.client as PoolClient).acquireConnection()));
  }
  const client = knex.client as PoolClient;
  const conn = await client.acquireConnection();
  try {
    await query(conn, 'BEGIN', []);
    let result: T;
    try {
      result = await fn(conn);
    } catch (err) {
      // A connection that cannot even roll back must not go back to the pool with a transaction
      // open: destroyed, knex's pool validation discards it.
      await query(conn, 'ROLLBACK', []).catch(() => conn.destroy?.());
      throw err;
    }
    await query(conn, 'COMMIT', []);
    return result;
  } finally {
    await client.releaseConnection(conn);
  }
}

export const mysqlDialect: Dialect = {
  name: 'mysql',
  claimFromCursor: true,
  readsPastRangeEnd: true,
  seeksPerPriority: true,

  prepareConfig(config, timeouts) {
    const pool = { ...(config.pool ?? {}) };
    const userAfterCreate = pool.afterCreate as ((conn: unknown, done: (e: Error | null, c: unknown) => void) => void) | undefined;
    return {
      ...withConnectTimeout(config, timeouts, 'connectTimeout', 'uri'),
      pool: {
        min: 0,
        max: 10,
        ...pool,
        afterCreate(conn: WatchedConnection & { query: (sql: string, cb: (err: Error | null) => void) => void; stream?: { destroy(err?: Error): unknown } }, done: (err: Error | null, c: unknown) => void) {
          // MySQL: mysql2's own query timeout leaves the connection in the pool with the statement
          // in flight; the watchdog closes it instead (timeouts.ts). The claim's own statements
          // (onOwnConnection) go through the same connection object, so they are bounded too.
          watchStatements(conn, timeouts.statementMs, () => conn.stream);
          conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', (err: Error | null) =>
            err || !userAfterCreate ? done(err, conn) : userAfterCreate(conn, done),
          );
        },
      },
    };
  },

  prepareExternal() {},

  async claim(knex, table, candidates, set: ClaimSet) {
    const locking = (c: Knex.QueryBuilder) => c.clearSelect().select('*').forUpdate().skipLocked().toSQL();
    const rows = await onOwnConnection(knex, async (conn) => {
      let selected: Record<string, unknown>[];
      if (isUnion(candidates) && candidates.consecutive) {
        // Ranges of the claim order, in order: each is read only while rows are still wanted.
        selected = [];
        for (const m of candidates.members) {
          const left = candidates.limit - selected.length;
          if (left <= 0) break;
          const sub = locking(m.clone().limit(left));
          selected.push(...((await query(conn, sub.sql, sub.bindings)) as Record<string, unknown>[]));
        }
      } else if (isUnion(candidates)) {
        // A per-queue claim: each member locks its own rows; the union is ordered and cut here,
        // and the rows left out stay locked only until this transaction ends.
        selected = [];
        for (const m of candidates.members) {
          const sub = locking(m);
          selected.push(...((await query(conn, sub.sql, sub.bindings)) as Record<string, unknown>[]));
        }
        const sign = candidates.ordering === 'ASC' ? 1 : -1;
        selected.sort((a, b) => sign * (Number(a.priority) - Number(b.priority)) || Number(a.run_at) - Number(b.run_at) || Number(a.id) - Number(b.id));
        selected = selected.slice(0, candidates.limit);
      } else {
        const sub = locking(candidates);
        selected = (await query(conn, sub.sql, sub.bindings)) as Record<string, unknown>[];
      }
      if (selected.length === 0) return selected;
      const update = knex(table)
        .whereIn('id', selected.map((r) => r.id as number))
        .update({
          locked_by: set.workerId,
          claim_token: knex.raw('CONCAT(?, id)', [`${set.token}:`]),
          locked_at: set.nowMs,
          locked_until: set.leaseUntilMs,
          attempts: knex.raw('attempts + 1'),
        })
        .toSQL();
      await query(conn, update.sql, update.bindings);
      return selected;
    });
    // MySQL: no UPDATE … RETURNING; the rows are locked, so applying the same values here gives
    // exactly what the UPDATE wrote (in place: the driver's row objects are ours).
    for (const r of rows) {
      r.locked_by = set.workerId;
      r.claim_token = `${set.token}:${String(r.id)}`;
      r.locked_at = set.nowMs;
      r.locked_until = set.leaseUntilMs;
      r.attempts = Number(r.attempts) + 1;
    }
    return rows;
  },

  async unionAll(db, members) {
    const u = unionSql('mysql', members);
    return rawRows('mysql', await db.raw(u.sql, u.bindings));
  },

  dueKeys(table, after, upTo, limit, nowMs) {
    // A loose index scan of tasks_keys (migration 011): one seek per key and MIN(run_at) read
    // off its first entry. The recursive walk of the other databases reads, here, every
    // unlocked entry once per key. GROUP BY names locked_by (fixed by the WHERE) so that the
    // scan may use the index's leading column.
    const where = ['locked_by IS NULL', after === null ? 'concurrency_key IS NOT NULL' : 'concurrency_key > ?'];
    if (upTo !== null) where.push('concurrency_key <= ?');
    const bindings: Knex.RawBinding[] = [...(after === null ? [] : [after]), ...(upTo === null ? [] : [upTo]), nowMs];
    const sql =
      `SELECT concurrency_key AS name FROM ${q(table)} WHERE ${where.join(' AND ')} ` +
      `GROUP BY locked_by, concurrency_key HAVING MIN(run_at) <= ? ORDER BY concurrency_key LIMIT ${Math.max(1, Math.floor(limit))}`;
    return { sql, bindings };
  },

  claimIndexSource(db, table) {
    // The seek for a key's first task, correlated to a list of keys: MariaDB answers it with a
    // ref access of the claim index (locked_by DESC, concurrency_key DESC, priority DESC, run_at, id), a
    // few entries per key, until its statistics favour a range or full index scan (20-40 ms per
    // claim over 100 keys in 5,000 tasks). And a claim from the cursor, a range of the claim
    // index, was read through tasks_keys from the start of its unlocked entries (LONGTX-01:
    // 53 ms a claim beside a long transaction). Pinned to the claim index.
    return db.raw('?? FORCE INDEX (??)', [table, `${table}_claim`]);
  },

  byIdSource(db, table) {
    // A lease renewal (ids, their tokens and the worker) was read through the claim index, which
    // leads with locked_by: every entry of the worker's tasks, with those of the tasks it finished
    // while InnoDB's purge is held off (LONGTX-01: 1.9 s a renewal, its rows locked meanwhile).
    return db.raw('?? FORCE INDEX (PRIMARY)', [table]);
  },

  async queuesWithTasks(db, table) {
    // MySQL/MariaDB answer the recursive walk's MIN() by reading every index entry of the queues
    // it passes (a paused queue's whole backlog; measured by bench/scenarios/flow.ts), so each
    // step is its own `ORDER BY queue LIMIT 1` seek, and queues of keyed tasks are listed too.
    const out: string[] = [];
    for (let after: string | null = null; ; ) {
      const query = db(table).select('queue').whereNull('locked_by').orderBy('queue').limit(1);
      if (after === null) query.whereNotNull('queue');
      else query.where('queue', '>', after);
      const row = (await query.first()) as { queue: string } | undefined;
      if (!row) return out;
      out.push((after = String(row.queue)));
    }
  },

  quote: q,

  rows: (result) => rawRows('mysql', result),

  async completeMany(knex, tables, items) {
    // MySQL/MariaDB: JSON_TABLE feeds every item through one bound parameter. Under READ
    // COMMITTED the INSERT … SELECT reads without locking, so the DELETE after it is guarded by
    // the claim tokens and must delete exactly the rows copied.
    const sql =
      completedInsertSelect(tables.completed, q, { finishedAt: 'j.finished_at', returnValue: 'j.rv', workerId: 'j.worker_id' }) +
      ` FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$[0]', token VARCHAR(80) PATH '$[1]', finished_at BIGINT PATH '$[2]', rv LONGTEXT PATH '$[3]', worker_id VARCHAR(64) PATH '$[4]')) j` +
      ` JOIN ${q(tables.tasks)} t ON t.id = j.id AND t.claim_token = j.token`;
    try {
      return await onOwnConnection(knex, async (conn) => {
        const res = (await query(conn, sql, [itemsJson(items)])) as { affectedRows: number };
        let done = items.map((i) => i.id);
        if (res.affectedRows !== items.length) {
          const copied = knex(tables.completed).select('task_id').whereIn('task_id', done).toSQL();
          done = ((await query(conn, copied.sql, copied.bindings)) as Array<{ task_id: unknown }>).map((r) => String(r.task_id));
        }
        if (done.length === 0) return done;
        const copiedIds = new Set(done);
        // MariaDB: a DELETE … WHERE id IN (…) that covers much of a small table is run as a scan,
        // and a locking scan waits for every row another session holds locked, deleted or not
        // (measured in LOCKWAIT-01: the results of 7 tasks waited on locks held on 4 others).
        // Driven from the list, each row is reached by its primary key and only those are locked.
        const pairs = JSON.stringify(items.filter((i) => copiedIds.has(i.id)).map((i) => [Number(i.id), i.token]));
        const del =
          `DELETE t FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$[0]', token VARCHAR(80) PATH '$[1]')) j` +
          ` STRAIGHT_JOIN ${q(tables.tasks)} t ON t.id = j.id AND t.claim_token = j.token`;
        const deleted = (await query(conn, del, [pairs])) as { affectedRows: number };
        if (deleted.affectedRows !== done.length) throw new CompletionMismatch();
        return done;
      });
    } catch (err) {
      if (err instanceof CompletionMismatch) return null;
      throw err;
    }
  },

  async insertReturningIds(db: Db, table, rows) {
    if (Array.isArray(rows) && rows.length === 1) {
      const [id] = (await db(table).insert(rows[0]!)) as number[];
      return [String(id)];
    }
    if (!(await consecutiveIds(db))) {
      // MySQL with interleaved insert ids: one row per statement, each id reported by the driver.
      const { columns, values } = uniformRows(rows);
      const ids: string[] = [];
      for (const v of values) {
        const [id] = (await db(table).insert(Object.fromEntries(columns.map((c, i) => [c, v[i]])))) as number[];
        ids.push(String(id));
      }
      return ids;
    }
    // The rows travel as one JSON document read by JSON_TABLE (thousands of bound parameters cost
    // far more to bind); values shared by every row are bound once. The insert id is each
    // statement's first row's; the rest follow it (consecutive lock mode holds the AUTO-INC lock
    // for the whole INSERT … SELECT). The ordinality column keeps JSON_TABLE valid when no value
    // varies.
    const { columns, values } = uniformRows(rows);
    const ids: string[] = [];
    for (const chunk of chunks(values, 5000)) {
      const { sources, constants, perRow } = splitChunk(columns, chunk);
      const jsonColumns = sources.flatMap((s, i) => ('at' in s ? [`c${s.at} ${MYSQL_TYPES[PG_TYPES[columns[i]!] ?? 'text']} PATH '$[${s.at}]'`] : []));
      const sql =
        `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) SELECT ${sources.map((s) => ('at' in s ? `j.c${s.at}` : '?')).join(', ')} ` +
        `FROM JSON_TABLE(?, '$[*]' COLUMNS (${['n FOR ORDINALITY', ...jsonColumns].join(', ')})) j`;
      const [res] = (await db.raw(sql, [...constants, JSON.stringify(perRow)] as Knex.RawBinding[])) as [{ insertId: number }];
      for (let i = 0; i < chunk.length; i++) ids.push(String(res.insertId + i));
    }
    return ids;
  },

  async extraSchema() {},

  async createIndex(knex, table, name, columnsSql, where) {
    // MySQL has no partial indexes. A "WHERE locked_by IS NULL" index becomes one led by
    // locked_by: the claim then reads only unlocked rows in claim order, and the lease recovery
    // ("locked_by IS NOT NULL AND locked_until < now") reads only the locked ones through the
    // same index, so the separate lease index is not created.
    if (where === 'locked_by IS NOT NULL') return;
    const cols = where === 'locked_by IS NULL' ? `locked_by, ${columnsSql}` : columnsSql;
    await knex.raw(`CREATE INDEX ${name} ON ${table} (${cols})`);
  },

  async statementLimit(knex): Promise<StatementLimit> {
    return { maxBytes: await maxAllowedPacket(knex), name: 'max_allowed_packet', resultBytes };
  },

  async serverTimeMs(knex) {
    // UTC_TIMESTAMP, not UNIX_TIMESTAMP(NOW()): NOW() is local time in the session's zone, and
    // its conversion back is off by an hour in the repeated hour of a daylight-saving change.
    const r = await knex.raw("SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000 AS t");
    return Number((r as [Array<{ t: unknown }>])[0][0]!.t);
  },

  classifyError(err): ErrorKind | null {
    const errno = Number((err as { errno?: unknown } | null)?.errno);
    const code = errorCode(err);
    if (RETRY_ERRNOS.has(errno)) return 'retry';
    if (errno === 1062 || code === 'ER_DUP_ENTRY') return 'unique';
    if (errno === 1146 || code === 'ER_NO_SUCH_TABLE') return 'missing-table';
    if (CONNECTION_ERRNOS.has(errno) || code === 'PROTOCOL_CONNECTION_LOST' || (err as { fatal?: boolean })?.fatal === true) {
      return 'connection';
    }
    if (isConnectionFailure(err)) return 'connection';
    return null;
  },
};

export type { Knex };

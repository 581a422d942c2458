/**
 * Teardown steps with a bound. A step that does not finish in time fails with what it waited on
 * (the connections a pool still has in use, the server sessions holding locks on a suite's
 * tables) instead of a bare mocha timeout that names nothing.
 */
import type { Knex } from 'knex';
import { closeConnection, connectPrivate, type Connection } from '../../core/store/connection.js';

/** True when `p` settles (either way) within `ms`. */
export async function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    const settled = p.then(
      () => true,
      () => true,
    );
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Awaits `step`. Past `ms`, fails with `what` and what `explain()` finds stuck (the step itself is
 * left to finish, or not, on its own).
 */
export async function bounded<T>(what: string, step: Promise<T>, ms: number, explain: () => Promise<string>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void explainWithin(explain, 10_000).then((why) => reject(new Error(`${what} did not finish within ${ms / 1000} s: ${why}`)));
    }, ms);
  });
  try {
    return await Promise.race([step, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function explainWithin(explain: () => Promise<string>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`(no explanation within ${ms / 1000} s)`), ms)));
  try {
    return await Promise.race([explain().catch((err: unknown) => `(could not tell: ${err instanceof Error ? err.message : String(err)})`), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** What tarn's pool (knex's, at run time) shows of itself. */
interface PoolView {
  numUsed(): number;
  numPendingCreates(): number;
  used: Array<{ resource: DriverConnection }>;
}

/** What pg's Client and mysql2's Connection show of themselves (for messages only). */
interface DriverConnection {
  processID?: number;
  threadId?: number;
  _ended?: boolean;
  stream?: { destroyed?: boolean };
  connection?: { stream?: { destroyed?: boolean } };
  _getActiveQuery?: () => { text?: string } | null | undefined;
}

function describeDriverConnection(c: DriverConnection): string {
  const session = c.processID ?? c.threadId;
  const socket = c.connection?.stream ?? c.stream;
  const closed = c._ended === true || socket?.destroyed === true;
  const active = c._getActiveQuery?.()?.text;
  return [
    session !== undefined ? `server session ${session}` : 'a connection',
    closed ? 'its socket already closed' : 'its socket open',
    active ? `running ${JSON.stringify(active.slice(0, 120))}` : 'no statement running',
  ].join(', ');
}

/**
 * The connections among `conns` whose pool is still busy, for a close that does not end: knex's
 * destroy() waits for every connection in use to be given back, and for every one being opened.
 */
export async function describeBusyPools(conns: ReadonlyArray<Promise<Connection>>): Promise<string> {
  const lines: string[] = [];
  for (const p of conns) {
    const conn = await p.catch(() => null);
    const pool = (conn?.knex.client as { pool?: PoolView } | undefined)?.pool;
    if (!conn || !pool || typeof pool.numUsed !== 'function') continue;
    if (pool.numUsed() === 0 && pool.numPendingCreates() === 0) continue;
    const held = pool.used.map((u) => describeDriverConnection(u.resource));
    lines.push(
      `the pool of ${conn.spec.display} still has ${pool.numUsed()} connection(s) in use${held.length ? ` (${held.join('; ')})` : ''}` +
        `${pool.numPendingCreates() ? ` and ${pool.numPendingCreates()} being opened` : ''} — taken from the pool and never given back`,
    );
  }
  return lines.length > 0 ? lines.join('; ') : 'no pool has a connection in use (knex destroy() waits on something else)';
}

/**
 * The other server sessions that hold or wait for locks on the tables whose names start with
 * `prefix` (asked on a connection of its own), for a rollback whose DROP TABLE waits.
 */
export async function describeLockHolders(conn: Connection, prefix: string): Promise<string> {
  if (conn.dialect.name === 'sqlite') return 'SQLite: no other session to tell about';
  const own = await connectPrivate(conn.spec, { connectMs: 5_000, statementMs: 5_000 });
  try {
    const rows = conn.dialect.name === 'postgres' ? await pgLockHolders(own.knex, prefix) : await mysqlLockHolders(own.knex);
    if (rows.length === 0) return `no other session holds a lock on the tables "${prefix}*"`;
    return `sessions holding or waiting for locks on the tables "${prefix}*": ${rows.join('; ')}`;
  } finally {
    await closeConnection(own);
  }
}

async function pgLockHolders(knex: Knex, prefix: string): Promise<string[]> {
  const r = (await knex.raw(
    `SELECT a.pid, a.state, host(a.client_addr) || ':' || a.client_port AS client, extract(epoch FROM now() - a.xact_start)::int AS in_transaction,
            string_agg(DISTINCT c.relname || ' ' || l.mode || CASE WHEN l.granted THEN '' ELSE ' (waiting)' END, ', ') AS locks, left(a.query, 120) AS query
       FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE c.relname LIKE ? AND a.pid <> pg_backend_pid()
      GROUP BY a.pid, a.state, a.client_addr, a.client_port, a.xact_start, a.query`,
    [`${prefix.replace(/[\\%_]/g, '\\$&')}%`],
  )) as { rows: Array<Record<string, unknown>> };
  return r.rows.map(
    (x) =>
      `pid ${String(x.pid)} (${String(x.state)}, client ${String(x.client)}${x.in_transaction === null ? '' : `, in a transaction for ${String(x.in_transaction)} s`}): ` +
      `${String(x.locks)}; last statement ${JSON.stringify(x.query)}`,
  );
}

async function mysqlLockHolders(knex: Knex): Promise<string[]> {
  // MySQL/MariaDB: a DROP TABLE waits for the metadata lock of every session with a transaction
  // open on the table; the sessions with an open InnoDB transaction, and those waiting, are named.
  const [rows] = (await knex.raw(
    `SELECT p.id, p.command, p.time, p.state, LEFT(p.info, 120) AS info, t.trx_started
       FROM information_schema.processlist p LEFT JOIN information_schema.innodb_trx t ON t.trx_mysql_thread_id = p.id
      WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID() AND (t.trx_id IS NOT NULL OR p.state LIKE 'Waiting for%')`,
  )) as [Array<Record<string, unknown>>];
  return rows.map(
    (x) =>
      `session ${String(x.id)} (${String(x.command)} for ${String(x.time)} s${x.state ? `, ${String(x.state)}` : ''}${x.trx_started ? ', a transaction open' : ''}): ${JSON.stringify(x.info ?? null)}`,
  );
}

/**
 * Opens (and caches) one knex instance per database. The application's own knex instance is used
 * as it is and never destroyed by us.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { ConfigError } from '../errors.js';
import { processWide } from '../base/global.js';
import { getLogger } from '../base/log.js';
import { dialectFor, type Dialect } from './dialects/index.js';
import { isPgConnectTimeout } from './dialects/dialect.js';
import type { DatabaseSpec } from '../config/database-spec.js';
import { DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT } from '../config/settings.js';
import { isStatementTimeout, timeoutsOf, type Timeouts } from './dialects/timeouts.js';

export interface Connection {
  knex: Knex;
  dialect: Dialect;
  spec: DatabaseSpec;
  /** False for the application's own knex instance. */
  owned: boolean;
  /** The bounds on waits for the server (our own pools only; the application's keeps its own). */
  timeouts: Timeouts;
}

/** The bounds of the default settings, for callers that have no settings at hand. */
export const DEFAULT_TIMEOUTS: Timeouts = timeoutsOf({ connectTimeout: DEFAULT_CONNECT_TIMEOUT, statementTimeout: DEFAULT_STATEMENT_TIMEOUT });

const pool = processWide('connections', () => new Map<string, Promise<Connection>>());

async function open(spec: DatabaseSpec, timeouts: Timeouts): Promise<Connection> {
  const dialect = dialectFor(spec.dialect);
  if (spec.knex) {
    dialect.prepareExternal(spec.knex);
    return { knex: spec.knex, dialect, spec, owned: false, timeouts };
  }
  if (spec.dialect === 'sqlite') checkSqliteDirectory(spec);
  const { default: knexFactory } = await import('knex');
  const config = dialect.prepareConfig(spec.config!, timeouts);
  // knex's own messages go through our logger (JSON lines stay JSON). A pooled connection that
  // broke, or one that could not be opened, is reported by knex too; the worker reports outages
  // itself and commands report the failed statement, so knex's copy is only for --verbose.
  config.log ??= {
    warn: (m: unknown) =>
      /^(Connection Error|Acquire connection error)/i.test(String(m)) ? getLogger().debug(`knex: ${String(m)}`) : getLogger().warn(`knex: ${String(m)}`),
    error: (m: unknown) => getLogger().error(`knex: ${String(m)}`),
    deprecate: (m: unknown) => getLogger().warn(`knex: ${String(m)}`),
    debug: () => {},
  };
  const knex = knexFactory(config);
  return { knex, dialect, spec, owned: true, timeouts };
}

/**
 * SQLite creates the database file, not its directory. Without this check a missing directory
 * surfaces as the driver's bare SQLITE_CANTOPEN, which reads like an unreachable server.
 */
function checkSqliteDirectory(spec: DatabaseSpec): void {
  const filename = (spec.config?.connection as { filename?: unknown } | undefined)?.filename;
  if (typeof filename !== 'string' || filename === ':memory:' || filename.startsWith('file:') || filename === '') return;
  const dir = path.dirname(filename);
  if (!existsSync(dir)) {
    throw new ConfigError(`Cannot open the SQLite database ${spec.display}: its directory ${dir} does not exist — create it (mkdir -p ${dir}) or set database to a path in an existing directory`);
  }
}

/** The cached connection for `spec` with these bounds, opened on first use. */
export function connect(spec: DatabaseSpec, timeouts: Timeouts = DEFAULT_TIMEOUTS): Promise<Connection> {
  const key = `${spec.key}\u0000${timeouts.connectMs}\u0000${timeouts.statementMs}`;
  let c = pool.get(key);
  if (!c) {
    c = open(spec, timeouts);
    c.catch(() => pool.delete(key));
    pool.set(key, c);
  }
  return c;
}

/** A connection that is not shared with the cache (a worker owns and closes its own). */
export function connectPrivate(spec: DatabaseSpec, timeouts: Timeouts = DEFAULT_TIMEOUTS): Promise<Connection> {
  return open(spec, timeouts);
}

/** Closes a connection this process opened (never the application's own instance). */
export async function closeConnection(conn: Connection): Promise<void> {
  if (conn.owned) await conn.knex.destroy();
}

/** The cached connections not closed yet (to tell what a close that does not end waits on). */
export function cachedConnections(): Array<Promise<Connection>> {
  return [...pool.values()];
}

/** Closes every connection bgtasks opened in this process. */
export async function closeConnections(): Promise<void> {
  const all = [...pool.values()];
  pool.clear();
  await Promise.all(
    all.map(async (p) => {
      try {
        await closeConnection(await p);
      } catch {
        // A connection that never opened has nothing to close.
      }
    }),
  );
}

/** What poolProblem() reads of knex's pool (tarn's, at run time). */
interface PoolState {
  max?: unknown;
  acquireTimeoutMillis?: unknown;
  numUsed?: () => number;
  numPendingCreates?: () => number;
}

/**
 * A pool exhausted, told apart from a server that does not answer: both end in knex's
 * KnexTimeoutError once acquireConnectionTimeout has passed, but only exhaustion leaves every
 * connection of the pool in use and none being opened. Says so and what to look at; null for any
 * other error, or a pool this cannot read.
 */
export function poolProblem(knex: Knex, err: unknown): string | null {
  if ((err as Error | null)?.name !== 'KnexTimeoutError') return null;
  const pool = (knex.client as { pool?: PoolState } | undefined)?.pool;
  if (!pool || typeof pool.numUsed !== 'function' || typeof pool.max !== 'number') return null;
  if (pool.numUsed() < pool.max || (pool.numPendingCreates?.() ?? 0) > 0) return null;
  const waited = typeof pool.acquireTimeoutMillis === 'number' ? ` for ${pool.acquireTimeoutMillis / 1000} s (knex's acquireConnectionTimeout)` : '';
  const which = pool.max === 1 ? "its pool's only connection" : `all ${pool.max} connections of its pool`;
  return `${which} stayed in use${waited} — a transaction held open on the same knex, or a pool (pool.max) too small for the load?`;
}

/** Who connects where, as far as the database spec tells (for messages). */
interface Target {
  host: string;
  port: number;
  user: string | null;
  database: string | null;
}

function targetOf(spec: DatabaseSpec): Target | null {
  if (spec.dialect === 'sqlite' || !spec.config) return null;
  const fallbackPort = spec.dialect === 'mysql' ? 3306 : 5432;
  const c = spec.config.connection as Record<string, unknown> | string | undefined;
  const url = typeof c === 'string' ? c : typeof c?.connectionString === 'string' ? c.connectionString : null;
  if (url !== null) {
    try {
      const u = new URL(url);
      return {
        host: u.hostname || 'localhost',
        port: u.port ? Number(u.port) : fallbackPort,
        user: u.username ? decodeURIComponent(u.username) : null,
        database: decodeURIComponent(u.pathname.replace(/^\//, '')) || null,
      };
    } catch {
      return null;
    }
  }
  if (!c || typeof c !== 'object') return null;
  return {
    host: typeof c.host === 'string' ? c.host : 'localhost',
    port: typeof c.port === 'number' ? c.port : Number(c.port) || fallbackPort,
    user: typeof c.user === 'string' ? c.user : null,
    database: typeof c.database === 'string' ? c.database : null,
  };
}

const URL_SOURCES = 'the database URL (--database, BGTASKS_DATABASE_URL or the config file)';

/**
 * What went wrong opening a connection to `spec` and how to fix it, from the driver's error code
 * (PostgreSQL SQLSTATE, MySQL/MariaDB error names, Node's network codes), with the server's own
 * words in parentheses; null for an error that is not one of these.
 */
export function connectionProblem(err: unknown, spec: DatabaseSpec): string | null {
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const server = spec.dialect === 'postgres' ? 'PostgreSQL' : 'MySQL/MariaDB';
  const said = typeof e?.message === 'string' && e.message ? ` (${server}: ${e.message})` : '';
  const t = targetOf(spec);
  const user = t?.user ? `user "${t.user}"` : 'the user';
  const database = t?.database ? `database "${t.database}"` : 'the database';
  const at = t ? `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}` : 'the server';
  const problem = (what: string, fix: string) => `${what}${said} — ${fix}`;
  const network = (what: string, fix: string) => `${what} — ${fix}`;
  switch (code) {
    case '28P01':
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
      return problem(`authentication failed for ${user}`, `check the user name and password in ${URL_SOURCES}`);
    case '28000':
      return problem(`the server refused ${user}`, `check the user name in ${URL_SOURCES}, and that the server lets it connect from this host (pg_hba.conf)`);
    case '3D000':
    case 'ER_BAD_DB_ERROR':
      return problem(`${database} does not exist`, `create it (CREATE DATABASE ${t?.database ?? '…'}), or fix the database name in ${URL_SOURCES}`);
    case 'ER_DBACCESS_DENIED_ERROR':
      return problem(
        `${user} may not use ${database}, or it does not exist`,
        `create it and grant the user access (GRANT ALL ON ${t?.database ?? '…'}.* TO …), or fix the database name in ${URL_SOURCES}`,
      );
    case '53300':
    case 'ER_CON_COUNT_ERROR':
      return problem(`the server at ${at} has too many connections`, 'lower the pool sizes of its clients, or raise its max_connections');
    case '57P03':
      return problem(`the server at ${at} is starting up or shutting down`, 'try again in a moment');
    case 'ECONNREFUSED':
      return network(`connection to ${at} refused`, 'is the server running, and listening on that address and port?');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return network(`the host name ${JSON.stringify(t?.host ?? '')} does not resolve`, `check the host in ${URL_SOURCES}`);
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return network(`no answer from ${at} (${code})`, 'check the host, the port and any firewall between here and the server');
  }
  if (isStatementTimeout(err)) {
    return network(
      `no answer from ${at} within ${err.timeoutMs / 1000} s (the statementTimeout setting); the connection was closed`,
      'check the network between here and the server, and whether the server is overloaded',
    );
  }
  if (isPgConnectTimeout(typeof e?.message === 'string' ? e.message : '')) {
    return network(`no answer from ${at} within the connectTimeout setting`, 'check the host, the port and any firewall, and whether the server is overloaded');
  }
  if (e?.name === 'KnexTimeoutError') {
    return network(
      `no connection to ${at} within the connectTimeout setting (none could be opened, or every pooled one stayed busy)`,
      'check the host, the port and any firewall, whether the server is overloaded, and whether the pool is large enough',
    );
  }
  return null;
}

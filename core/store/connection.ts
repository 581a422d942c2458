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
import type { DatabaseSpec } from '../config/database-spec.js';

export interface Connection {
  knex: Knex;
  dialect: Dialect;
  spec: DatabaseSpec;
  /** False for the application's own knex instance. */
  owned: boolean;
}

const pool = processWide('connections', () => new Map<string, Promise<Connection>>());

async function open(spec: DatabaseSpec): Promise<Connection> {
  const dialect = dialectFor(spec.dialect);
  if (spec.knex) {
    dialect.prepareExternal(spec.knex);
    return { knex: spec.knex, dialect, spec, owned: false };
  }
  if (spec.dialect === 'sqlite') checkSqliteDirectory(spec);
  const { default: knexFactory } = await import('knex');
  const config = dialect.prepareConfig(spec.config!);
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
  return { knex, dialect, spec, owned: true };
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

/** The cached connection for `spec`, opened on first use. */
export function connect(spec: DatabaseSpec): Promise<Connection> {
  let c = pool.get(spec.key);
  if (!c) {
    c = open(spec);
    c.catch(() => pool.delete(spec.key));
    pool.set(spec.key, c);
  }
  return c;
}

/** A connection that is not shared with the cache (a worker owns and closes its own). */
export function connectPrivate(spec: DatabaseSpec): Promise<Connection> {
  return open(spec);
}

/** Closes a connection this process opened (never the application's own instance). */
export async function closeConnection(conn: Connection): Promise<void> {
  if (conn.owned) await conn.knex.destroy();
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

/** One Store per database and table prefix, opened on first use. */
import type { Settings } from '../config/settings.js';
import { closeConnections, connect, connectionProblem } from './connection.js';
import type { DatabaseSpec } from '../config/database-spec.js';
import { ConfigError, DatabaseUnavailableError, isErrorKind } from '../errors.js';
import { processWide } from '../base/global.js';
import { Store } from './store.js';
import { timeoutsOf } from './dialects/timeouts.js';

const stores = processWide('stores', () => new Map<string, Promise<Store>>());

/** The database spec of a named connection (`default` or undefined: the main database). */
export function databaseFor(settings: Settings, connection?: string | null): DatabaseSpec {
  if (!connection || connection === 'default') return settings.connections.default ?? settings.database;
  const spec = settings.connections[connection];
  if (!spec) {
    const names = ['default', ...Object.keys(settings.connections).filter((n) => n !== 'default')];
    throw new ConfigError(`Unknown connection "${connection}" — configured connections: ${names.join(', ')}`);
  }
  return spec;
}

export function storeFor(settings: Settings, connection?: string | null): Promise<Store> {
  const spec = databaseFor(settings, connection);
  const timeouts = timeoutsOf(settings);
  const key = `${spec.key}\u0000${settings.tablePrefix}\u0000${settings.errorsKept}\u0000${timeouts.connectMs}\u0000${timeouts.statementMs}`;
  let s = stores.get(key);
  if (!s) {
    s = connect(spec, timeouts).then((conn) => new Store(conn, settings.tablePrefix, settings.errorsKept));
    s.catch(() => stores.delete(key));
    stores.set(key, s);
  }
  return s;
}

/** Forgets cached stores (their connections are closed by closeConnections()). */
export function forgetStores(): void {
  stores.clear();
}

const verified = processWide('verifiedStores', () => new WeakSet<Store>());

/** The store, after a round trip that proves the database is reachable (a clear error if not). */
export async function reachableStore(settings: Settings, connection?: string | null): Promise<Store> {
  const spec = databaseFor(settings, connection);
  let store: Store;
  try {
    store = await storeFor(settings, connection);
    if (verified.has(store)) return store;
    await store.knex.raw('SELECT 1');
    verified.add(store);
  } catch (err) {
    if (isErrorKind(err, 'ConfigError')) throw err;
    const problem = connectionProblem(err, spec);
    if (problem) throw new DatabaseUnavailableError(`Cannot connect to the database ${spec.display}: ${problem}`, { cause: err });
    const msg = err instanceof Error ? err.message : String(err);
    throw new DatabaseUnavailableError(`Cannot reach the database ${spec.display}: ${msg || (err as { code?: string })?.code || 'unknown error'}`, {
      cause: err,
    });
  }
  return store;
}

/**
 * Closes every connection bgtasks opened in this process and forgets the stores on them; a later
 * enqueue opens new ones. The application's own knex instance is never closed.
 */
export async function closeAll(): Promise<void> {
  forgetStores();
  await closeConnections();
}

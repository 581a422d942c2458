/**
 * The public `createDashboard` and `serveDashboard`: the web layer of dashboard.ts and serve.ts
 * over the application's own database (the configured one, a named connection, or a `database`
 * and `tablePrefix` given here), or over any `source` given. The store is opened on the first
 * request, so mounting stays synchronous.
 */
import { getSettings, type SettingsInput } from '../config/settings.js';
import { ConfigError } from '../errors.js';
import { storeFor } from '../store/open.js';
import type { Store } from '../store/store.js';
import { createDashboard as createWebDashboard, type Dashboard, type DashboardOptions } from './dashboard.js';
import { DatabaseSource } from './database-source.js';
import { serveDashboard as serveWeb, type DashboardServer, type ServeOptions } from './serve.js';
import type { DashboardSource } from './source.js';

/** Where the dashboard reads; every field optional (default: the configured database and prefix). */
export interface DashboardDatabaseOptions {
  /** A database URL, a knex config, or the app's knex instance, as the `database` setting takes. */
  database?: SettingsInput['database'];
  /** A named connection of the `connections` setting. */
  connection?: string;
  /** Default: the `tablePrefix` setting. */
  tablePrefix?: string;
  /** Reads and actions from elsewhere instead (tests, or a custom storage). */
  source?: DashboardSource;
}

export type CreateDashboardOptions = Omit<DashboardOptions, 'source'> & DashboardDatabaseOptions;
export type ServeDashboardOptions = Omit<ServeOptions, 'source'> & DashboardDatabaseOptions;

/** A source over the database the options name (opened on first use). */
export function databaseSource(o: DashboardDatabaseOptions & { now?: () => number } = {}): DashboardSource {
  if (o.source) {
    if (o.database !== undefined || o.connection !== undefined || o.tablePrefix !== undefined) {
      throw new ConfigError('createDashboard takes either a `source` or `database`/`connection`/`tablePrefix`, not both');
    }
    return o.source;
  }
  if (o.connection !== undefined && (typeof o.connection !== 'string' || o.connection === '')) {
    throw new ConfigError(`dashboard connection must be the name of a configured connection, not ${JSON.stringify(o.connection)}`);
  }
  const overrides: SettingsInput = {};
  if (o.database !== undefined) overrides.database = o.database;
  if (o.tablePrefix !== undefined) overrides.tablePrefix = o.tablePrefix;
  const open = async (): Promise<Store> => {
    const settings = await getSettings(Object.keys(overrides).length > 0 ? { overrides } : {});
    return storeFor(settings, o.connection);
  };
  return new DatabaseSource({ store: open, now: o.now });
}

function split<T extends DashboardDatabaseOptions>(o: T): { rest: Omit<T, keyof DashboardDatabaseOptions>; source: DashboardSource } {
  if (!o || typeof o !== 'object') throw new ConfigError('createDashboard needs an options object (it may be empty)');
  const { database, connection, tablePrefix, source, ...rest } = o;
  return { rest, source: databaseSource({ database, connection, tablePrefix, source, now: (o as { now?: () => number }).now }) };
}

/** The dashboard as request handlers to mount in an app (see docs/dashboard.md). */
export function createDashboard(options: CreateDashboardOptions = {}): Dashboard {
  const { rest, source } = split(options);
  return createWebDashboard({ ...rest, source });
}

/** The dashboard on its own HTTP server (as `bgtasks dashboard` runs it). */
export async function serveDashboard(options: ServeDashboardOptions = {}): Promise<DashboardServer> {
  const { rest, source } = split(options);
  return serveWeb({ ...rest, source });
}

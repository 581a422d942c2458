/**
 * Opening the store the flags name, for the operations commands: the database must be reachable
 * (else a clear error naming it) and migrated by this version (else exit 3, naming what to run).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { resolveSettings, type Settings } from '../core/config/settings.js';
import { NotMigratedError } from '../core/errors.js';
import { ensureMigrated } from '../core/store/migrate.js';
import type { Store } from '../core/store/store.js';
import { databaseFor, reachableStore } from '../core/store/open.js';
import { overridesFrom, type DbFlags } from './flags.js';

export interface StoreFlags extends DbFlags {
  connection?: string;
  json?: boolean;
}

/**
 * SQLite creates the file of a database it opens when there is none: a command run in another
 * directory (the default database is ./bgtasks.sqlite3 there) left an empty file behind, then
 * said the database was not migrated. Only `bgtasks migrate` and `process-tasks --migrate` create
 * the file; every other command stops before it opens the database, with the same exit code and
 * what to run.
 */
export function refuseMissingSqliteFile(settings: Settings, connection?: string | null): void {
  const missing = missingSqliteFile(settings, connection);
  if (missing === null) return;
  throw new NotMigratedError(
    `The database ${missing} is not migrated: its file does not exist. Run \`bgtasks migrate\` to create it (or start the worker with --migrate), ` +
      'or point --database, BGTASKS_DATABASE_URL or the config file at your database.',
  );
}

/** The SQLite database (as printed) whose file is not there, or null (there, or not a file). */
export function missingSqliteFile(settings: Settings, connection?: string | null): string | null {
  const spec = databaseFor(settings, connection);
  if (spec.dialect !== 'sqlite' || spec.knex !== null) return null;
  const filename = (spec.config?.connection as { filename?: unknown } | undefined)?.filename;
  // ':memory:' and SQLite URIs (file:…) name no plain file to look for. A missing directory is
  // left to the connection, whose error names it (migrating would not help there).
  if (typeof filename !== 'string' || filename === ':memory:' || filename.startsWith('file:') || existsSync(filename)) return null;
  return existsSync(path.dirname(filename)) ? spec.display : null;
}

/** The settings and the migrated store the flags point at. */
export async function openStore(flags: StoreFlags): Promise<{ settings: Settings; store: Store }> {
  const settings = await resolveSettings({ overrides: overridesFrom(flags) });
  refuseMissingSqliteFile(settings, flags.connection);
  const store = await reachableStore(settings, flags.connection);
  await ensureMigrated(store.conn, settings.tablePrefix);
  return { settings, store };
}

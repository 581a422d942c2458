/**
 * Opening the store the flags name, for the operations commands: the database must be reachable
 * (else a clear error naming it) and migrated by this version (else exit 3, naming what to run).
 */
import { resolveSettings, type Settings } from '../core/config/settings.js';
import { ensureMigrated } from '../core/store/migrate.js';
import type { Store } from '../core/store/store.js';
import { reachableStore } from '../core/store/open.js';
import { overridesFrom, type DbFlags } from './flags.js';

export interface StoreFlags extends DbFlags {
  connection?: string;
  json?: boolean;
}

/** The settings and the migrated store the flags point at. */
export async function openStore(flags: StoreFlags): Promise<{ settings: Settings; store: Store }> {
  const settings = await resolveSettings({ overrides: overridesFrom(flags) });
  const store = await reachableStore(settings, flags.connection);
  await ensureMigrated(store.conn, settings.tablePrefix);
  return { settings, store };
}

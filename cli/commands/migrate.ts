/** `bgtasks migrate [--status]`: apply (or list) bgtasks' own migrations. */
import { resolveSettings } from '../../core/config/settings.js';
import { runMigrations, schemaStatus, statusOf } from '../../core/store/migrate.js';
import { reachableStore } from '../../core/store/open.js';
import { overridesFrom, type DbFlags } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { missingSqliteFile } from '../open-store.js';

export interface MigrateFlags extends DbFlags {
  status?: boolean;
  json?: boolean;
  connection?: string;
}

export async function migrateCommand(flags: MigrateFlags): Promise<number> {
  const settings = await resolveSettings({ overrides: overridesFrom(flags) });
  const out = (s: string) => process.stdout.write(`${s}\n`);
  if (flags.status) {
    // A SQLite file that is not there has nothing applied; looking must not create it.
    const missing = missingSqliteFile(settings, flags.connection);
    const store = missing === null ? await reachableStore(settings, flags.connection) : null;
    const database = store?.conn.spec.display ?? missing!;
    const s = store ? await schemaStatus(store.conn, settings.tablePrefix) : statusOf([]);
    if (flags.json) {
      out(JSON.stringify({ database, tablePrefix: settings.tablePrefix, ...s }));
    } else {
      out(`database: ${database} (table prefix "${settings.tablePrefix}")${store ? '' : ' (its file does not exist)'}`);
      for (const n of s.applied) out(`  applied  ${n}${s.unknown.includes(n) ? '  (unknown to this version: upgrade bgtasks)' : ''}`);
      for (const n of s.pending) out(`  pending  ${n}`);
      out(s.pending.length === 0 && s.unknown.length === 0 ? 'up to date' : s.unknown.length > 0 ? 'migrated by a newer bgtasks' : `${s.pending.length} pending: run \`bgtasks migrate\``);
    }
    return s.pending.length === 0 && s.unknown.length === 0 ? EXIT.OK : EXIT.NOT_MIGRATED;
  }
  const store = await reachableStore(settings, flags.connection);
  const applied = await runMigrations(store.conn, settings.tablePrefix);
  if (flags.json) out(JSON.stringify({ database: store.conn.spec.display, applied }));
  else out(applied.length === 0 ? `Already up to date: ${store.conn.spec.display}` : `Applied ${applied.length} migration(s) to ${store.conn.spec.display}: ${applied.join(', ')}`);
  return EXIT.OK;
}

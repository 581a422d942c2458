/** `bgtasks migrate [--status]`: apply (or list) bgtasks' own migrations. */
import { resolveSettings } from '../../core/config/settings.js';
import { runMigrations, schemaStatus } from '../../core/store/migrate.js';
import { reachableStore } from '../../core/store/open.js';
import { overridesFrom, type DbFlags } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { refuseMissingSqliteFile } from '../open-store.js';

export interface MigrateFlags extends DbFlags {
  status?: boolean;
  json?: boolean;
  connection?: string;
}

export async function migrateCommand(flags: MigrateFlags): Promise<number> {
  const settings = await resolveSettings({ overrides: overridesFrom(flags) });
  // The status only reads: it must not create a SQLite file that is not there.
  if (flags.status) refuseMissingSqliteFile(settings, flags.connection);
  const store = await reachableStore(settings, flags.connection);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  if (flags.status) {
    const s = await schemaStatus(store.conn, settings.tablePrefix);
    if (flags.json) {
      out(JSON.stringify({ database: store.conn.spec.display, tablePrefix: settings.tablePrefix, ...s }));
    } else {
      out(`database: ${store.conn.spec.display} (table prefix "${settings.tablePrefix}")`);
      for (const n of s.applied) out(`  applied  ${n}${s.unknown.includes(n) ? '  (unknown to this version: upgrade bgtasks)' : ''}`);
      for (const n of s.pending) out(`  pending  ${n}`);
      out(s.pending.length === 0 && s.unknown.length === 0 ? 'up to date' : s.unknown.length > 0 ? 'migrated by a newer bgtasks' : `${s.pending.length} pending: run \`bgtasks migrate\``);
    }
    return s.pending.length === 0 && s.unknown.length === 0 ? EXIT.OK : EXIT.NOT_MIGRATED;
  }
  const applied = await runMigrations(store.conn, settings.tablePrefix);
  if (flags.json) out(JSON.stringify({ database: store.conn.spec.display, applied }));
  else out(applied.length === 0 ? `Already up to date: ${store.conn.spec.display}` : `Applied ${applied.length} migration(s) to ${store.conn.spec.display}: ${applied.join(', ')}`);
  return EXIT.OK;
}

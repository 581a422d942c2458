/**
 * Applies bgtasks' own migrations, tracked in `<prefix>migrations` so they never mix with the
 * application's knex migrations.
 */
import type { Knex } from 'knex';
import { MIGRATIONS } from '../../migrations/list.js';
import { connect, type Connection } from './connection.js';
import { getSettings } from '../config/settings.js';
import { NotMigratedError } from '../errors.js';
import { dialectFor } from './dialects/index.js';
import { parseDatabase } from '../config/database-spec.js';
import { tablesFor } from './store.js';
import { databaseFor } from './open.js';
import { timeoutsOf, withoutStatementTimeout } from './dialects/timeouts.js';

export interface SchemaStatus {
  applied: string[];
  pending: string[];
  /** Applied migrations this version does not know: a newer bgtasks migrated this database. */
  unknown: string[];
}

function migrationConfig(conn: Connection, prefix: string): Knex.MigratorConfig {
  const ctx = { prefix, dialect: conn.dialect };
  return {
    tableName: tablesFor(prefix).migrations,
    migrationSource: {
      getMigrations: async () => MIGRATIONS.map((m) => m.name),
      getMigrationName: (name: string) => name,
      getMigration: async (name: string) => {
        const m = MIGRATIONS.find((x) => x.name === name)!;
        return { up: (k: Knex) => m.up(k, ctx), down: (k: Knex) => m.down(k, ctx) };
      },
    },
  };
}

/** Which migrations are applied, pending, or unknown to this version. */
export async function schemaStatus(conn: Connection, prefix: string): Promise<SchemaStatus> {
  const table = tablesFor(prefix).migrations;
  let applied: string[] = [];
  try {
    // One query: a missing table means nothing is applied.
    const rows = (await conn.knex(table).select('name').orderBy('id')) as Array<{ name: string }>;
    applied = rows.map((r) => r.name);
  } catch (err) {
    if (conn.dialect.classifyError(err) !== 'missing-table') throw err;
  }
  return statusOf(applied);
}

/** The schema status of a database where these migrations (by name) are applied. */
export function statusOf(applied: readonly string[]): SchemaStatus {
  const known = MIGRATIONS.map((m) => m.name);
  return {
    applied: [...applied],
    pending: known.filter((n) => !applied.includes(n)),
    unknown: applied.filter((n) => !known.includes(n)),
  };
}

/** Applies pending migrations; returns their names. */
export async function runMigrations(conn: Connection, prefix: string): Promise<string[]> {
  return withoutStatementTimeout(async () => {
    const status = await schemaStatus(conn, prefix);
    if (status.unknown.length > 0) throw newerVersion(conn, status);
    const [, names] = (await conn.knex.migrate.latest(migrationConfig(conn, prefix))) as [number, string[]];
    return names;
  });
}

/** Rolls every bgtasks migration back (drops the tables). For tests and uninstalling. */
export async function rollbackMigrations(conn: Connection, prefix: string): Promise<void> {
  await withoutStatementTimeout(() => conn.knex.migrate.rollback(migrationConfig(conn, prefix), true));
  const t = tablesFor(prefix).migrations;
  await conn.knex.schema.dropTableIfExists(`${t}_lock`);
  await conn.knex.schema.dropTableIfExists(t);
}

function newerVersion(conn: Connection, s: SchemaStatus): NotMigratedError {
  return new NotMigratedError(
    `The database ${conn.spec.display} was migrated by a newer version of bgtasks (unknown migrations: ${s.unknown.join(', ')}). Upgrade bgtasks.`,
  );
}

/** Throws a NotMigratedError that says what to run unless the schema is exactly this version's. */
export async function ensureMigrated(conn: Connection, prefix: string): Promise<void> {
  const s = await schemaStatus(conn, prefix);
  if (s.unknown.length > 0) throw newerVersion(conn, s);
  if (s.pending.length > 0) {
    const what = s.applied.length === 0 ? 'is not migrated' : `needs ${s.pending.length} more migration(s): ${s.pending.join(', ')}`;
    throw new NotMigratedError(
      `The database ${conn.spec.display} ${what} (table prefix "${prefix}"). Run \`bgtasks migrate\`, or start the worker with --migrate.`,
    );
  }
}

/**
 * Migrates the database: the application's own knex instance, or the configured database when
 * called without one. Returns the names of the migrations applied.
 */
export async function migrate(knex?: Knex, options: { tablePrefix?: string } = {}): Promise<string[]> {
  const settings = await getSettings();
  const prefix = options.tablePrefix ?? settings.tablePrefix;
  if (knex) {
    const spec = parseDatabase(knex, process.cwd(), 'migrate(knex)');
    const conn: Connection = { knex, dialect: dialectFor(spec.dialect), spec, owned: false, timeouts: timeoutsOf(settings) };
    return runMigrations(conn, prefix);
  }
  return runMigrations(await connect(databaseFor(settings), timeoutsOf(settings)), prefix);
}

/**
 * The databases a bench run covers and the fresh tables each scenario gets. SQLite is always
 * measured, on a new file per scenario; MariaDB/MySQL and PostgreSQL are measured when the test
 * suite's URLs are set, each scenario under its own random table prefix, dropped afterwards, so a
 * bench run never touches anyone's real tables.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { getSettings, migrate } from '../../core/index.js';
// Internal on purpose: the harness's own connection (used for set-up, reads and the bare-knex
// baseline) must be set up exactly like the library's pool, or the enqueue comparison would
// measure pool settings instead of library overhead.
import { dialectFor } from '../../core/store/dialects/index.js';
import { timeoutsOf } from '../../core/store/dialects/timeouts.js';

export type DbName = 'sqlite' | 'mysql' | 'postgres';
export const DB_NAMES: readonly DbName[] = ['sqlite', 'mysql', 'postgres'];

export interface DbTarget {
  name: DbName;
  label: string;
  /** The server URL; null for SQLite (a temporary file per scenario). */
  url: string | null;
  env: string | null;
}

const ALL: DbTarget[] = [
  { name: 'sqlite', label: 'SQLite', url: null, env: null },
  { name: 'mysql', label: 'MariaDB/MySQL', url: process.env.BGTASKS_TEST_MYSQL_URL || null, env: 'BGTASKS_TEST_MYSQL_URL' },
  { name: 'postgres', label: 'PostgreSQL', url: process.env.BGTASKS_TEST_PG_URL || null, env: 'BGTASKS_TEST_PG_URL' },
];

/** The databases to measure: SQLite always, the servers whose URL is set; `only` narrows them. */
export function configuredTargets(only: readonly DbName[] | null): { targets: DbTarget[]; notices: string[] } {
  const notices: string[] = [];
  const targets: DbTarget[] = [];
  for (const t of ALL) {
    if (only && !only.includes(t.name)) continue;
    if (t.name !== 'sqlite' && !t.url) {
      notices.push(`${t.env} is not set: ${t.label} is not measured.`);
      continue;
    }
    targets.push(t);
  }
  return { targets, notices };
}

/** A knex config exactly like the one the library builds for `url` (same driver, pool, pragmas). */
async function libraryKnexConfig(url: string, cwd: string): Promise<{ config: Knex.Config; dialect: DbName }> {
  const settings = await getSettings({ cwd, env: {}, overrides: { database: url } });
  const spec = settings.database;
  return { config: dialectFor(spec.dialect).prepareConfig(spec.config!, timeoutsOf(settings)), dialect: spec.dialect };
}

const live = new Set<BenchTables>();

/** One scenario's fresh, migrated bgtasks tables, and a harness connection to them. */
export class BenchTables {
  readonly tasks: string;
  readonly completed: string;

  private constructor(
    readonly target: DbTarget,
    /** What the library and the CLI are given (`--database`). */
    readonly url: string,
    readonly prefix: string,
    readonly knex: Knex,
    private readonly file: string | null,
  ) {
    this.tasks = `${prefix}tasks`;
    this.completed = `${prefix}completed_tasks`;
  }

  get db(): DbName {
    return this.target.name;
  }

  static async create(target: DbTarget, workDir: string, label: string): Promise<BenchTables> {
    const id = randomBytes(3).toString('hex');
    const file = target.name === 'sqlite' ? path.join(workDir, `${label}-${id}.sqlite3`) : null;
    const url = file ? `sqlite:${file}` : target.url!;
    const prefix = `bench_${id}_`;
    const { config } = await libraryKnexConfig(url, workDir);
    const knex = knexFactory(config);
    const t = new BenchTables(target, url, prefix, knex, file);
    live.add(t);
    await migrate(knex, { tablePrefix: prefix });
    return t;
  }

  /** Empties the pending, completed and lock tables (between the runs of a scenario). */
  async empty(): Promise<void> {
    for (const table of [this.tasks, this.completed, `${this.prefix}locks`]) await this.knex(table).truncate();
  }

  async count(table: string, where?: (q: Knex.QueryBuilder) => void): Promise<number> {
    const q = this.knex(table).count({ n: '*' });
    if (where) where(q);
    const [row] = (await q) as Array<{ n: unknown }>;
    return Number(row?.n ?? 0);
  }

  /** Drops every table with this scenario's prefix (or the SQLite file) and closes the connection. */
  async drop(): Promise<void> {
    live.delete(this);
    try {
      if (!this.file) {
        for (const name of await this.prefixedTables()) await this.knex.schema.dropTableIfExists(name);
        // PostgreSQL: the schema's notify trigger function outlives its table.
        if (this.db === 'postgres') await this.knex.raw(`DROP FUNCTION IF EXISTS "${this.prefix}tasks_notify"()`);
      }
    } finally {
      await this.knex.destroy();
      if (this.file) for (const f of [this.file, `${this.file}-wal`, `${this.file}-shm`]) if (existsSync(f)) rmSync(f);
    }
  }

  private async prefixedTables(): Promise<string[]> {
    const sql =
      this.db === 'mysql'
        ? 'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()'
        : 'SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()';
    const rows = rawRows(this.db, await this.knex.raw(sql)) as Array<{ name?: string; NAME?: string; TABLE_NAME?: string }>;
    return rows.map((r) => String(r.name ?? r.NAME ?? r.TABLE_NAME)).filter((n) => n.startsWith(this.prefix));
  }
}

/** Drops whatever an interrupted run left behind. */
export async function dropAllLive(): Promise<void> {
  for (const t of [...live]) await t.drop().catch(() => {});
}

/** Rows from `knex.raw`: sqlite gives an array, mysql2 `[rows, fields]`, pg `{ rows }`. */
export function rawRows(db: DbName, result: unknown): Record<string, unknown>[] {
  if (db === 'postgres') return (result as { rows: Record<string, unknown>[] }).rows;
  if (db === 'mysql') return (result as [Record<string, unknown>[]])[0];
  return result as Record<string, unknown>[];
}

/** The database software's version, for the machine description. */
export async function databaseVersion(target: DbTarget, workDir: string): Promise<string> {
  const { config } = await libraryKnexConfig(target.url ?? 'sqlite::memory:', workDir);
  const knex = knexFactory(config);
  try {
    const db = target.name;
    const sql = db === 'sqlite' ? 'SELECT sqlite_version() AS v' : db === 'mysql' ? 'SELECT version() AS v' : 'SHOW server_version';
    const [row] = rawRows(db, await knex.raw(sql));
    const v = String(row?.v ?? row?.server_version ?? '?');
    if (db === 'sqlite') return `SQLite ${v} (knex client ${String(config.client)})`;
    if (db === 'mysql') return /mariadb/i.test(v) ? `MariaDB ${v}` : `MySQL ${v}`;
    return `PostgreSQL ${v}`;
  } finally {
    await knex.destroy();
  }
}

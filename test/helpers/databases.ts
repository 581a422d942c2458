/**
 * The contract-suite harness: one suite body, run on SQLite always and on MariaDB/MySQL and
 * PostgreSQL when BGTASKS_TEST_MYSQL_URL / BGTASKS_TEST_PG_URL are set. A URL that is set but
 * unreachable fails the run (the `before` hook throws); an unset URL skips that database with a
 * printed notice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { configure, resetConfiguration, resolveSettings, type Settings } from '../../core/config/settings.js';
import { cachedConnections, closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations, runMigrations } from '../../core/store/migrate.js';
import type { Store } from '../../core/store/store.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import type { DialectName } from '../../core/config/database-spec.js';
import { bounded, describeBusyPools, describeLockHolders } from './teardown.js';

/** How long one teardown step (the rollback, closing the connections) may take on a loaded machine. */
const TEARDOWN_STEP_MS = 45_000;

export interface TestDatabase {
  readonly name: DialectName;
  /** The database URL (for SQLite, of a file in a temporary directory). */
  url: string;
  /** Settings for this suite: its own table prefix, nothing from the environment. */
  settings: Settings;
  store: Store;
  /** Empties the bgtasks tables (between tests). */
  reset(): Promise<void>;
  /** A temporary directory removed after the suite. */
  dir: string;
}

interface Target {
  name: DialectName;
  label: string;
  env: string | null;
  url: string | null;
}

const TARGETS: Target[] = [
  { name: 'sqlite', label: 'SQLite', env: null, url: 'sqlite' },
  { name: 'mysql', label: 'MariaDB/MySQL', env: 'BGTASKS_TEST_MYSQL_URL', url: process.env.BGTASKS_TEST_MYSQL_URL || null },
  { name: 'postgres', label: 'PostgreSQL', env: 'BGTASKS_TEST_PG_URL', url: process.env.BGTASKS_TEST_PG_URL || null },
];

const g = globalThis as { __bgtasksNoticePrinted?: boolean };
if (!g.__bgtasksNoticePrinted) {
  g.__bgtasksNoticePrinted = true;
  for (const t of TARGETS) {
    if (t.env && !t.url) {
      process.stdout.write(`NOTICE: ${t.env} is not set: the ${t.label} contract tests are skipped (not counted as passed).\n`);
    }
  }
}

/** The databases the suite runs on in this environment. */
export function availableDatabases(): DialectName[] {
  return TARGETS.filter((t) => t.url).map((t) => t.name);
}

/** The URL of a configured server database, or null. */
export function serverUrl(name: 'mysql' | 'postgres'): string | null {
  return TARGETS.find((t) => t.name === name)!.url;
}

export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}_`;
}

/** Settings for a database URL with a table prefix, ignoring the environment and config files. */
export async function settingsFor(url: string, tablePrefix: string, cwd: string, extra: Record<string, unknown> = {}): Promise<Settings> {
  return resolveSettings({ cwd, env: {}, overrides: { database: url, tablePrefix, ...extra } });
}

/** A suite body and its extra settings, as `contract()` received it. */
export interface ContractSuite {
  title: string;
  body: (db: TestDatabase) => void;
  extraSettings: Record<string, unknown>;
}

/** Every suite given to `contract()` so far, so it can run once more on another target. */
const suites: ContractSuite[] = [];

/** The suites `contract()` has registered whose titles start with `prefix` (e.g. 'store: '). */
export function registeredContracts(prefix: string): ContractSuite[] {
  return suites.filter((s) => s.title.startsWith(prefix));
}

/**
 * Defines `describe(title [db])` for each available database. The body gets a TestDatabase whose
 * tables are created before the suite, emptied before each test and dropped after the suite.
 */
export function contract(title: string, body: (db: TestDatabase) => void, extraSettings: Record<string, unknown> = {}): void {
  suites.push({ title, body, extraSettings });
  for (const t of TARGETS) {
    if (!t.url) continue;
    const url = t.name === 'sqlite' ? null : t.url;
    describeOn({ name: t.name, label: t.env ?? t.label, tag: t.name, url: () => url }, { title, body, extraSettings });
  }
}

/**
 * A database a suite runs on: `url` is read in the suite's `before` hook, so a server that an
 * outer `before` starts (a PgBouncer, a private server) can be the target. A null URL means a
 * SQLite file in the suite's temporary directory.
 */
export interface ContractTarget {
  name: DialectName;
  /** Named in the error when the database is unreachable. */
  label: string;
  /** Shown in the suite's title: `title [tag]`. */
  tag: string;
  url: () => string | null;
}

/** Defines `describe(title [tag])` running `suite` on `target` (see `contract()`). */
export function describeOn(target: ContractTarget, suite: ContractSuite): void {
  const { title, body, extraSettings } = suite;
  describe(`${title} [${target.tag}]`, function () {
    const db = { name: target.name } as TestDatabase;
    before(async function () {
      this.timeout(60_000);
      db.dir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-test-'));
      db.url = target.url() ?? `sqlite:${path.join(db.dir, 'test.sqlite3')}`;
      db.settings = await settingsFor(db.url, uniquePrefix(), db.dir, extraSettings);
      db.store = await storeFor(db.settings);
      try {
        await db.store.knex.raw('SELECT 1');
      } catch (err) {
        throw new Error(`${target.label} is set but the database is unreachable: ${(err as Error).message}`, { cause: err });
      }
      await runMigrations(db.store.conn, db.settings.tablePrefix);
      // Task calls (enqueue) read the process-wide settings: point them at this suite's tables.
      configure({ database: db.url, tablePrefix: db.settings.tablePrefix, ...extraSettings });
      const tables = db.store.tables;
      db.reset = async () => {
        await db.store.knex(tables.tasks).del();
        await db.store.knex(tables.completed).del();
        await db.store.knex(tables.locks).del();
        await db.store.knex(tables.schedules).del();
        await db.store.knex(tables.scheduleSlots).del();
        await db.store.knex(tables.queues).del();
        await db.store.knex(tables.rateStarts).del();
        await db.store.knex(tables.workers).del();
      };
    });
    after(async function () {
      // Each step is bounded below mocha's timeout, so that a step that waits for ever fails
      // with what it waited on (a lock, a connection never given back) rather than a bare timeout.
      this.timeout(2 * TEARDOWN_STEP_MS + 30_000);
      const stuck: string[] = [];
      if (db.store) {
        const { conn } = db.store;
        const prefix = db.settings.tablePrefix;
        await bounded(`rolling back the migrations of "${prefix}*"`, rollbackMigrations(conn, prefix).catch(() => {}), TEARDOWN_STEP_MS, () =>
          describeLockHolders(conn, prefix),
        ).catch((err: Error) => stuck.push(err.message));
      }
      resetConfiguration();
      forgetStores();
      const open = cachedConnections();
      await bounded('closing the connections', closeConnections(), TEARDOWN_STEP_MS, () => describeBusyPools(open)).catch((err: Error) => stuck.push(err.message));
      if (db.dir) rmSync(db.dir, { recursive: true, force: true });
      if (stuck.length > 0) throw new Error(`teardown of "${title} [${target.tag}]": ${stuck.join('; ')}`);
    });
    body(db);
  });
}

/** Polls `cond` until it holds (never a fixed sleep); fails with `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 10): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

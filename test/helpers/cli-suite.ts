/**
 * The set-up of a spawned-CLI suite on one database target (test/helpers/record-project.ts
 * cliTargets): a temporary project holding the suite's `tasks.ts`, the environment that points the
 * real compiled CLI at the target's tables (with RUN_LOG and ABORT_LOG files for the tasks to write
 * to), and a Store on the same tables, so a test writes tasks and reads results without spawning
 * anything. After the suite the tables are rolled back, the connections closed and the project
 * removed.
 */
import { expect } from 'chai';
import path from 'node:path';
import { settingsFor } from './databases.js';
import { makeProject, runCli, type Project, type RunResult } from './project.js';
import type { CliTarget } from './record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations, runMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import type { Store } from '../../core/store/store.js';

export interface CliSuite {
  /** The fields below are set by the suite's `before` hook. */
  project: Project;
  store: Store;
  env: Record<string, string>;
  runLog: string;
  abortLog: string;
  /** Runs `bgtasks <args>` in the project against the target. */
  cli(...args: string[]): Promise<RunResult>;
  /** A pending task written straight into the tasks table (faster than spawning a script); its id. */
  enqueue(name: string, args: unknown[], queue?: string | null): Promise<string>;
  /** Migrates the target's tables (if needed) and empties them. */
  migrated(): Promise<void>;
}

/** Fails with the run's output when it did not exit with `code`. */
export function expectCode(r: RunResult, code: number): void {
  expect(r.code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).to.equal(code);
}

/** Registers the suite's hooks (call it inside `describe`) and returns the suite's handles. */
export function cliSuite(t: CliTarget, tasks: string): CliSuite {
  const suite = {
    cli: (...args: string[]) => runCli(args, suite.project.dir, suite.env),
    enqueue: async (name: string, args: unknown[], queue: string | null = null) => {
      const text = JSON.stringify(args);
      const now = Date.now();
      const [id] = await suite.store.insertTasks([plainTask({ name, args: text, hash: taskHash(name, text), queue, runAt: now, enqueuedAt: now })]);
      return id!;
    },
    migrated: async () => {
      await runMigrations(suite.store.conn, t.prefix);
      await suite.store.knex(suite.store.tables.tasks).del();
      await suite.store.knex(suite.store.tables.completed).del();
    },
  } as CliSuite;

  before(async () => {
    suite.project = makeProject({ 'tasks.ts': tasks });
    suite.runLog = path.join(suite.project.dir, 'ran.log');
    suite.abortLog = path.join(suite.project.dir, 'aborts.log');
    suite.env = { ...t.env, RUN_LOG: suite.runLog, ABORT_LOG: suite.abortLog };
    suite.store = await storeFor(await settingsFor(t.url(suite.project), t.prefix, suite.project.dir));
  });
  after(async () => {
    if (suite.store) await rollbackMigrations(suite.store.conn, t.prefix).catch(() => {});
    forgetStores();
    await closeConnections();
    suite.project.remove();
  });
  return suite;
}

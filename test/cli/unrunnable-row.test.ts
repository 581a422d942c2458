/**
 * A worker that claims a row it cannot run (issue 15, item 3), spawned: the database is made to
 * compare task names loosely, as MySQL/MariaDB did before migration 003, so the claim returns a
 * row named `NOOP` to a worker that registers `noop`. `process-tasks --batch` must still end, and
 * the row must be given back, with its attempt, for later. On every database, each made loose its
 * own way: a case-insensitive collation on the `name` column.
 */
import { expect } from 'chai';
import path from 'node:path';
import type { Knex } from 'knex';
import { settingsFor } from '../helpers/databases.js';
import { makeProject, runCli, startCli, type Project, type Spawned } from '../helpers/project.js';
import { cliTargets, ranLines } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { plainTask } from '../../core/store/rows.js';
import type { Store } from '../../core/store/store.js';
import type { Settings } from '../../core/config/settings.js';

const TASKS = `
import { appendFileSync } from 'node:fs';
import { background } from 'bgtasks';

export const noop = background({ name: 'noop' }, function noop() {
  appendFileSync(process.env.RUN_LOG!, 'noop\\n');
});
`;

/**
 * Makes `tasks.name` compare without regard to case: the state 003 fixes on MySQL/MariaDB. Returns
 * what removes the rest once the tables are dropped (given the store open then).
 */
async function loosenNames(store: Store, name: string): Promise<(s: Store) => Promise<void>> {
  const knex: Knex = store.knex;
  const table = store.tables.tasks;
  if (name === 'mysql') {
    await knex.raw('ALTER TABLE ?? MODIFY `name` VARCHAR(190) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL', [table]);
    return async () => {};
  }
  if (name === 'postgres') {
    const collation = `${store.prefix}ci`;
    await knex.raw(`CREATE COLLATION ?? (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`, [collation]);
    await knex.raw('ALTER TABLE ?? ALTER COLUMN name TYPE varchar(190) COLLATE ??', [table, collation]);
    // The collation can go only once the table that uses it is gone.
    return async (s) => {
      await s.knex.raw('DROP COLLATION IF EXISTS ??', [collation]);
    };
  }
  // SQLite: no ALTER COLUMN; the stored CREATE TABLE text is the schema, so edit it (the next
  // connection, the spawned worker's, reads the edited text).
  await knex.transaction(async (trx) => {
    await trx.raw('PRAGMA writable_schema = ON');
    await trx.raw("UPDATE sqlite_master SET sql = replace(sql, '`name` varchar(190) not null', '`name` varchar(190) not null collate nocase') WHERE type = 'table' AND name = ?", [table]);
    await trx.raw('PRAGMA writable_schema = OFF');
  });
  const [{ sql }] = (await knex.raw("SELECT sql FROM sqlite_master WHERE name = ?", [table])) as Array<{ sql: string }>;
  if (!/collate nocase/.test(sql)) throw new Error(`could not make ${table}.name case-insensitive: ${sql}`);
  return async () => {};
}

for (const t of cliTargets()) {
  describe(`a row the worker cannot run, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let settings: Settings;
    let cleanup = async (_s: Store) => {};
    const children: Spawned[] = [];

    before(() => {
      project = makeProject({ 'tasks.ts': TASKS });
    });
    after(async () => {
      for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      // A fresh store: the test closes connections on its way.
      forgetStores();
      await closeConnections();
      if (settings) {
        const s = await storeFor(settings);
        await rollbackMigrations(s.conn, t.prefix);
        await cleanup(s);
      }
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('process-tasks --batch runs `noop`, gives the look-alike `NOOP` back once with its attempt, warns once, and ends', async () => {
      const env = { ...t.env, RUN_LOG: path.join(project.dir, 'ran.log') };
      const migrated = await runCli(['migrate'], project.dir, env);
      expect(migrated.code, migrated.stderr).to.equal(0);
      settings = await settingsFor(t.url(project), t.prefix, project.dir);
      let store = await storeFor(settings);
      cleanup = await loosenNames(store, t.name);
      const now = Date.now();
      const [, ghost] = await store.insertTasks([
        plainTask({ name: 'noop', args: '[]', hash: '1'.repeat(40), runAt: now - 1000, enqueuedAt: now - 1000 }),
        plainTask({ name: 'NOOP', args: '[]', hash: '2'.repeat(40), runAt: now - 1000, enqueuedAt: now - 1000 }),
      ]);
      // SQLite: the worker must not share a connection that read the schema before the edit.
      forgetStores();
      await closeConnections();

      const run = startCli(['process-tasks', '--batch', '--no-startup-delay', '--sleep', '0.05'], project.dir, env);
      children.push(run);
      const ended = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000).unref())]);
      expect(ended, `process-tasks --batch did not end within 30 s; output so far:\n${run.stdout().slice(-2000)}`).to.not.equal(null);
      expect(ended!.code, ended!.stderr + ended!.stdout).to.equal(0);
      expect(ranLines(env.RUN_LOG)).to.deep.equal(['noop']);
      const warnings = ended!.stdout.split('\n').filter((l) => /cannot run/.test(l));
      expect(warnings, ended!.stdout).to.have.length(1);
      expect(warnings[0]).to.match(/NOOP/);

      store = await storeFor(settings);
      const row = (await store.findPending(ghost!))!;
      expect(row).to.include({ name: 'NOOP', attempts: 0, lockedBy: null });
      expect(row.runAt).to.be.greaterThan(Date.now() + 30_000);
    });
  });
}

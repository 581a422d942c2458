/**
 * The real CLI, spawned: migrate, enqueue from an application script, process-tasks; on SQLite
 * (the default file) and, through BGTASKS_DATABASE_URL, on MariaDB and PostgreSQL.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { settingsFor } from '../helpers/databases.js';
import { makeProject, runCli, runScript, type Project } from '../helpers/project.js';
import { cliTargets, ENQUEUE_SCRIPT, RECORD_TASKS, ranLines } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import type { Store } from '../../core/store/store.js';
import { MIGRATIONS } from '../../migrations/list.js';

for (const t of cliTargets()) {
  describe(`bgtasks process-tasks, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store | undefined;
    let env: Record<string, string>;
    let runLog: string;

    before(() => {
      project = makeProject({ 'tasks.ts': RECORD_TASKS, 'enqueue.ts': ENQUEUE_SCRIPT });
      runLog = path.join(project.dir, 'ran.log');
      env = { ...t.env, RUN_LOG: runLog };
    });
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('refuses to run on a database that is not migrated (exit 3, says what to run)', async () => {
      const r = await runCli(['process-tasks', '--batch', '--no-startup-delay'], project.dir, env);
      expect(r.code).to.equal(3);
      expect(r.stderr).to.match(/not migrated.*bgtasks migrate/s);
      expect(r.stderr).not.to.match(/\n\s+at /);
    });

    it('migrates, then runs 100 enqueued tasks exactly once, with their return values', async () => {
      const migrated = await runCli(['migrate'], project.dir, env);
      expect(migrated.code, migrated.stderr).to.equal(0);
      expect(migrated.stdout).to.match(new RegExp(`Applied ${MIGRATIONS.length} migration\\(s\\)`));

      const enq = await runScript('enqueue.ts', project.dir, env, ['1', '100']);
      expect(enq.code, enq.stderr).to.equal(0);

      const run = await runCli(['process-tasks', '--duration', '5', '--sleep', '0.1', '--no-startup-delay'], project.dir, env);
      expect(run.code, run.stderr + run.stdout).to.equal(0);
      expect(run.stderr).to.equal('');
      expect(run.stdout).not.to.match(/ERROR/);

      const lines = ranLines(runLog).map((l) => Number(l.split(' ')[0]));
      expect(lines.slice().sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 100 }, (_, i) => i + 1));

      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      const rows = (await store.knex(store.tables.completed).select('args', 'return_value', 'attempts', 'failed_at')) as Array<Record<string, unknown>>;
      expect(rows).to.have.length(100);
      for (const r of rows) {
        const n = (JSON.parse(String(r.args)) as number[])[0]!;
        expect(JSON.parse(String(r.return_value))).to.deep.equal({ n, doubled: n * 2 });
        expect(Number(r.attempts)).to.equal(1);
        expect(r.failed_at).to.equal(null);
      }
      const [{ n: pending }] = (await store.knex(store.tables.tasks).count({ n: '*' })) as Array<{ n: unknown }>;
      expect(Number(pending)).to.equal(0);
    });

    it('--connection NAME runs the tasks of a connection that only a task file declares with configure()', async () => {
      const enq = await runScript('enqueue.ts', project.dir, env, ['1001', '3']);
      expect(enq.code, enq.stderr).to.equal(0);
      // Another project whose default database is its own (never created) SQLite file: the
      // tasks are reachable only through the connection its tasks.ts declares.
      const other = makeProject({
        'tasks.ts': `${RECORD_TASKS}\nimport { configure } from 'bgtasks';\nconfigure({ connections: { reports: process.env.REPORTS_URL! } });\n`,
      });
      try {
        const otherEnv = { RUN_LOG: runLog, REPORTS_URL: t.url(project), BGTASKS_TABLE_PREFIX: t.prefix };
        const run = await runCli(['process-tasks', '--batch', '--no-startup-delay', '--connection', 'reports'], other.dir, otherEnv);
        expect(run.code, run.stderr + run.stdout).to.equal(0);
        expect(ranLines(runLog).map((l) => Number(l.split(' ')[0])).filter((n) => n > 1000)).to.have.members([1001, 1002, 1003]);
        expect(existsSync(path.join(other.dir, 'bgtasks.sqlite3')), 'the default database was opened').to.equal(false);
        const unknown = await runCli(['process-tasks', '--batch', '--no-startup-delay', '--connection', 'nosuch'], other.dir, otherEnv);
        expect(unknown.code).to.equal(2);
        expect(unknown.stderr).to.match(/Unknown connection "nosuch".*reports/);
      } finally {
        other.remove();
      }
    });
  });
}

/**
 * `process-tasks --queue ""` (a crontab's `--queue "$QUEUE"` with the variable unset) runs every
 * queue with a one-line notice, as the reference reads an empty queue; it used to exit 2. The same
 * for `--exclude-queues ""` (excludes none). The real compiled binary, on SQLite and, when
 * configured, MariaDB and PostgreSQL.
 */
import { expect } from 'chai';
import path from 'node:path';
import { settingsFor } from '../helpers/databases.js';
import { makeProject, runCli, type Project } from '../helpers/project.js';
import { cliTargets, ranLines, RECORD_TASKS } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations, runMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import type { Store } from '../../core/store/store.js';

for (const t of cliTargets()) {
  describe(`process-tasks with an empty --queue or --exclude-queues, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    let runLog: string;
    let n = 0;

    /** One pending record(n) task per queue (null: none); returns their numbers. */
    const enqueue = async (queues: Array<string | null>): Promise<number[]> => {
      const now = Date.now();
      const nums = queues.map(() => ++n);
      await store.insertTasks(
        queues.map((queue, i) => {
          const args = JSON.stringify([nums[i]]);
          return plainTask({ name: 'record', args, hash: taskHash('record', args), queue, runAt: now, enqueuedAt: now });
        }),
      );
      return nums;
    };
    const ran = () => ranLines(runLog).map((l) => Number(l.split(' ')[0]));
    const run = (...args: string[]) => runCli(['process-tasks', '--batch', '--no-startup-delay', ...args], project.dir, { ...t.env, RUN_LOG: runLog });

    before(async () => {
      project = makeProject({ 'tasks.ts': RECORD_TASKS });
      runLog = path.join(project.dir, 'runs.log');
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      await runMigrations(store.conn, t.prefix);
    });
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project?.remove();
    });

    it('--queue "" runs the tasks of every queue and those without one, exit 0, with one notice line on stderr', async () => {
      const nums = await enqueue(['mail', 'sms', null]);
      const r = await run('--queue', '');
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.equal('bgtasks: --queue is empty: taking tasks of every queue, and tasks without one\n');
      expect(ran()).to.include.members(nums);
      expect(r.stdout).to.match(/worker started .*queues=all/);
    });

    it('--queue " " (blank) is empty too; --exclude-queues "" excludes none, with its own notice', async () => {
      const blank = await enqueue(['mail', null]);
      const r1 = await run('--queue', ' ');
      expect(r1.code, r1.stderr).to.equal(0);
      expect(r1.stderr).to.match(/^bgtasks: --queue is empty/);
      expect(ran()).to.include.members(blank);

      const nums = await enqueue(['mail', 'sms', null]);
      const r2 = await run('--exclude-queues=');
      expect(r2.code, r2.stderr).to.equal(0);
      expect(r2.stderr).to.equal('bgtasks: --exclude-queues is empty: excluding no queue\n');
      expect(ran()).to.include.members(nums);
    });

    it('--queue "" with --exclude-queues mail: every queue but mail (the empty --queue does not conflict)', async () => {
      const [mail, sms, none] = (await enqueue(['mail', 'sms', null])) as [number, number, number];
      const r = await run('--queue', '', '--exclude-queues', 'mail');
      expect(r.code, r.stderr).to.equal(0);
      expect(ran()).to.include.members([sms, none]);
      expect(ran()).not.to.include(mail);
      await store.knex(store.tables.tasks).del();
    });

    if (t.name === 'sqlite') {
      it('a list with an empty part (--queue "mail,") is still a usage error (exit 2)', async () => {
        const r = await run('--queue', 'mail,');
        expect(r.code).to.equal(2);
        expect(r.stderr).to.equal('bgtasks: Invalid --queue: "mail," — expected a comma-separated list of queue names\n');
      });
    }
  });
}

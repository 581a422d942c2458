/**
 * `bgtasks show` prints a task's errors in the API's TaskError shape, spawned as the real compiled
 * CLI on SQLite and (when configured) MariaDB and PostgreSQL: `show --json` has the fields the
 * API's result has, with the same values, plus the deprecated `class` and `stack` copies.
 */
import { expect } from 'chai';
import { settingsFor } from '../helpers/databases.js';
import { makeProject, runCli, type Project } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { readResult } from '../../core/api/results.js';
import type { Store } from '../../core/store/store.js';

const FIELDS = ['exceptionClass', 'message', 'traceback', 'attempt', 'at', 'workerId'];

for (const t of cliTargets()) {
  describe(`bgtasks show: the error record, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    const cli = (...args: string[]) => runCli(args, project.dir, t.env);

    before(async () => {
      project = makeProject();
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      const m = await cli('migrate');
      expect(m.code, m.stderr).to.equal(0);
    });
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('show --json gives each error with the API\'s fields and values; class and stack are still there, as copies', async () => {
      const now = Date.now();
      const stored = [
        { class: 'TimeoutError', message: 'SMTP timeout', stack: 'TimeoutError: SMTP timeout\n    at send (/app/tasks.ts:3:9)', attempt: 1, at: now - 5000, workerId: 'w1' },
        { class: 'CancelledError', message: 'cancelled', stack: 'CancelledError: cancelled', attempt: 2, at: now - 1000, workerId: null },
      ];
      await store.knex(store.tables.completed).insert({
        task_id: 4242, name: 'send', args: '["a@b.c"]', hash: 'x', priority: 0, run_at: now - 9000, scheduled_at: now - 9000,
        enqueued_at: now - 9000, attempts: 2, started_at: now - 6000, finished_at: now - 1000, failed_at: now - 1000,
        return_value: null, last_error: stored[1]!.stack, errors: JSON.stringify(stored), worker_id: 'w1',
      });
      const r = await cli('show', '4242', '--json');
      expect(r.code, r.stderr).to.equal(0);
      const show = (JSON.parse(r.stdout) as { errors: Array<Record<string, unknown>> }).errors;
      const api = (JSON.parse(JSON.stringify(await readResult(store, '4242'))) as { errors: Array<Record<string, unknown>> }).errors;
      expect(api.map((e) => Object.keys(e))).to.deep.equal([FIELDS, FIELDS]);
      expect(show.map((e) => Object.keys(e))).to.deep.equal([
        [...FIELDS, 'class', 'stack'],
        [...FIELDS, 'class', 'stack'],
      ]);
      show.forEach((e, i) => {
        const { class: cls, stack, ...current } = e;
        expect(current).to.deep.equal(api[i]);
        expect(cls).to.equal(stored[i]!.class);
        expect(stack).to.equal(stored[i]!.stack);
      });
      expect(show[0]).to.include({ exceptionClass: 'TimeoutError', traceback: stored[0]!.stack, attempt: 1, at: new Date(now - 5000).toISOString() });

      const plain = await cli('show', '4242');
      expect(plain.code, plain.stderr).to.equal(0);
      expect(plain.stdout).to.contain(`attempt 1 at ${new Date(now - 5000).toISOString()} on w1: TimeoutError: SMTP timeout\n      TimeoutError: SMTP timeout\n          at send`);
    });
  });
}

/**
 * `bgtasks run-now ID…`, spawned, on every database: a READY task due later becomes due now, one
 * already due is left as it is, a finished one is reported and left, an unknown id exits 2 with
 * nothing changed; --json too.
 */
import { expect } from 'chai';
import { settingsFor } from '../helpers/databases.js';
import { makeProject, runCli, type Project } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { expectCode } from '../helpers/cli-suite.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import type { Store } from '../../core/store/store.js';

for (const t of cliTargets()) {
  describe(`bgtasks run-now, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    let env: Record<string, string>;
    const cli = (...args: string[]) => runCli(args, project.dir, env);
    const insert = async (runAt: number) => {
      const args = JSON.stringify([runAt]);
      const [id] = await store.insertTasks([plainTask({ name: 'later', args, hash: taskHash('later', args), runAt, enqueuedAt: Date.now() })]);
      return id!;
    };
    const runAtOf = async (id: string) => Number(((await store.knex(store.tables.tasks).where('id', id).first('run_at')) as { run_at: unknown }).run_at);

    before(async function () {
      project = makeProject({ 'tasks.ts': 'export {};\n' });
      env = { ...t.env };
      expectCode(await cli('migrate'), 0);
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
    });
    after(async function () {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('moves a future READY task to now, leaves a due one, and refuses an unknown id before changing anything', async () => {
      const far = Date.now() + 86_400_000;
      const later = await insert(far);
      const due = await insert(Date.now() - 1000);
      const dueAt = await runAtOf(due);
      let r = await cli('run-now', later, '999999999');
      expectCode(r, 2);
      expect(r.stderr).to.match(/999999999/);
      expect(await runAtOf(later)).to.equal(far);
      r = await cli('run-now', later, due);
      expectCode(r, 0);
      expect(r.stdout).to.match(new RegExp(`later #${later}: due now`));
      expect(r.stdout).to.match(new RegExp(`later #${due}: already due`));
      expect(await runAtOf(later)).to.be.at.most(Date.now());
      expect(await runAtOf(due)).to.equal(dueAt);
      r = await cli('run-now', 'abc');
      expectCode(r, 2);
    });

    it('--json reports each outcome', async () => {
      const later = await insert(Date.now() + 86_400_000);
      const r = await cli('run-now', later, '--json');
      expectCode(r, 0);
      const out = JSON.parse(r.stdout) as { results: Array<{ id: string; outcome: string; status: string }> };
      expect(out.results).to.have.length(1);
      expect(out.results[0]).to.include({ id: later, outcome: 'movedToNow', status: 'READY' });
    });
  });
}

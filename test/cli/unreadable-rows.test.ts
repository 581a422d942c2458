/**
 * Rows whose JSON columns hold text bgtasks cannot read back (written by another program or by
 * hand), seen through the real compiled CLI on SQLite and (when configured) MariaDB and
 * PostgreSQL: `list`, `list --json`, `show`, `show --json`, `stats` and `stats --json` all
 * succeed, show every row with its id, and mark the unreadable ones.
 */
import { expect } from 'chai';
import { settingsFor } from '../helpers/databases.js';
import { makeProject, runCli, type Project, type RunResult } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { plainTask } from '../../core/store/rows.js';
import { taskHash } from '../../core/base/json.js';
import type { Store } from '../../core/store/store.js';

const BIG = 900_000_000;

function expectOk(r: RunResult): void {
  expect(r.code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).to.equal(0);
  expect(r.stderr).to.equal('');
}

/** The table line of task `id`. */
function rowOf(stdout: string, id: string): string {
  const found = stdout.split('\n').find((l) => l.startsWith(`${id} `));
  expect(found, `a line for #${id} in:\n${stdout}`).to.be.a('string');
  return found!;
}

for (const t of cliTargets()) {
  describe(`bgtasks list, show and stats with unreadable rows, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    const cli = (...args: string[]) => runCli(args, project.dir, t.env);
    const ids = { good: '', badPending: String(BIG + 1), badDone: String(BIG + 2), badReturn: String(BIG + 3), badErrors: String(BIG + 4) };

    before(async () => {
      project = makeProject();
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      expectOk(await cli('migrate'));
      const now = Date.now();
      [ids.good] = await store.insertTasks([plainTask({ name: 'good', args: '[1]', hash: taskHash('good', '[1]'), runAt: now, enqueuedAt: now })]);
      await store.knex(store.tables.tasks).insert({
        id: BIG + 1, name: 'bad', args: '{bad', hash: 'x', priority: 0, run_at: now, scheduled_at: now, enqueued_at: now, attempts: 0,
      });
      const done = (id: number, o: { args?: string; failed?: boolean; returnValue?: string | null; errors?: string | null }) =>
        store.knex(store.tables.completed).insert({
          task_id: id, name: 'bad', args: o.args ?? '[2]', hash: 'x', priority: 0, run_at: now - 3000, scheduled_at: now - 3000,
          enqueued_at: now - 4000, attempts: 1, started_at: now - 2000, finished_at: now - 1000 - id % 10, failed_at: o.failed ? now - 1000 : null,
          return_value: o.returnValue ?? null, last_error: o.failed ? 'Error: no' : null, errors: o.errors ?? null, worker_id: 'w1',
        });
      await done(BIG + 2, { args: '{"a":', failed: true });
      await done(BIG + 3, { returnValue: 'nope' });
      await done(BIG + 4, { failed: true, errors: 'oops\nmore' });
    });
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('list prints every row with its id; unreadable arguments are shown as stored, marked "not valid JSON"', async () => {
      const r = await cli('list');
      expectOk(r);
      expect(rowOf(r.stdout, ids.good)).to.match(/\[1\]$/);
      expect(rowOf(r.stdout, ids.badPending)).to.match(/ready .*\(not valid JSON\) \{bad$/);
      expect(rowOf(r.stdout, ids.badDone)).to.match(/failed .*\(not valid JSON\) \{"a":$/);
      rowOf(r.stdout, ids.badReturn);
      rowOf(r.stdout, ids.badErrors);
    });

    it('list --json gives such arguments as null, with the text and why in "unreadable"', async () => {
      const r = await cli('list', '--json');
      expectOk(r);
      const list = JSON.parse(r.stdout) as Array<Record<string, any>>;
      expect(list.map((x) => x.id).sort()).to.deep.equal(Object.values(ids).sort());
      const byId = (id: string) => list.find((x) => x.id === id)!;
      expect(byId(ids.good)).to.deep.include({ args: [1], unreadable: null });
      expect(byId(ids.badPending).args).to.equal(null);
      expect(byId(ids.badPending).unreadable.args).to.include({ text: '{bad', reason: 'not valid JSON' });
      expect(byId(ids.badPending).unreadable.args.parseError).to.be.a('string');
      expect(byId(ids.badDone).unreadable.args).to.include({ text: '{"a":', reason: 'not valid JSON' });
      expect(byId(ids.badReturn)).to.deep.include({ args: [2] });
    });

    it('show marks unreadable arguments, return value and error history; --json gives them as null with "unreadable"', async () => {
      const plain = await cli('show', ids.badPending);
      expectOk(plain);
      expect(plain.stdout).to.match(/^args: +\(not valid JSON: .+\) \{bad$/m);
      const pj = await cli('show', ids.badPending, '--json');
      expectOk(pj);
      const p = JSON.parse(pj.stdout) as Record<string, any>;
      expect(p).to.include({ id: ids.badPending, status: 'READY', args: null });
      expect(p.unreadable.args).to.include({ text: '{bad', reason: 'not valid JSON' });

      const ret = await cli('show', ids.badReturn);
      expectOk(ret);
      expect(ret.stdout).to.match(/^return value: +\(not valid JSON: .+\) nope$/m);
      const rj = JSON.parse((await cli('show', ids.badReturn, '--json')).stdout) as Record<string, any>;
      expect(rj).to.include({ status: 'SUCCESSFUL', returnValue: null });
      expect(rj.args).to.deep.equal([2]);
      expect(rj.unreadable).to.deep.equal({ returnValue: { text: 'nope', reason: 'not valid JSON', parseError: rj.unreadable.returnValue.parseError } });

      const errs = await cli('show', ids.badErrors);
      expectOk(errs);
      // The stored text stays on one line: its line break is written as \n.
      expect(errs.stdout).to.match(/^errors: +\(not valid JSON: .+\) oops\\nmore$/m);
      expect(errs.stdout).to.match(/^last error:\n {4}Error: no$/m);
      const ej = JSON.parse((await cli('show', ids.badErrors, '--json')).stdout) as Record<string, any>;
      expect(ej).to.include({ status: 'FAILED', errors: null });
      expect(ej.unreadable.errors).to.include({ text: 'oops\nmore', reason: 'not valid JSON' });
    });

    it('stats counts the unreadable rows like any other', async () => {
      const plain = await cli('stats');
      expectOk(plain);
      expect(plain.stdout).to.match(/^-\s+2\s+0\s+1\s+2$/m);
      const s = await cli('stats', '--json');
      expectOk(s);
      expect((JSON.parse(s.stdout) as { totals: unknown }).totals).to.deep.equal({ READY: 2, RUNNING: 0, SUCCESSFUL: 1, FAILED: 2 });
    });
  });
}

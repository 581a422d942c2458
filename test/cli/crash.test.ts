/**
 * Crash containment, spawned: an unhandled rejection from task code is logged (naming the task)
 * and the worker goes on; an uncaught exception releases the in-flight tasks (attempts given back)
 * and the process exits non-zero, so its supervisor starts a fresh one.
 */
import { expect } from 'chai';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { makeProject, runCli, spawnNode, startCli, TSX_LOADER, type Project } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { configure, resetConfiguration } from '../../core/config/settings.js';
import { getResult } from '../../core/api/results.js';

const TASKS = `
import { background } from 'bgtasks';

export const forgets = background(async function forgets(n: number) {
  // A promise nobody awaits or catches, rejected while the task still runs (so it can be
  // attributed to this task: the only one running).
  void Promise.reject(new Error('forgotten rejection ' + n));
  await new Promise((r) => setTimeout(r, 100));
  return n;
});

export const explodes = background(async function explodes() {
  setTimeout(() => {
    throw new Error('thrown outside any promise');
  }, 50);
  await new Promise((r) => setTimeout(r, 10_000));
});

export const slow = background(async function slow() {
  await new Promise((r) => setTimeout(r, 10_000));
});
`;

const ENQUEUE = `
import { closeConnections } from 'bgtasks';
import * as tasks from './tasks.js';
const ids = [];
for (const name of process.argv.slice(2)) ids.push((await (tasks as any)[name](1)).id);
process.stdout.write(ids.join(',') + '\\n');
await closeConnections();
process.exit(0);
`;

for (const t of cliTargets()) {
  describe(`crash containment, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    const enqueue = async (...names: string[]) => {
      const r = await spawnNode(['--import', TSX_LOADER, 'enqueue.ts', ...names], project.dir, t.env).exited;
      expect(r.code, r.stderr).to.equal(0);
      return r.stdout.trim().split(',');
    };

    before(async () => {
      project = makeProject({ 'tasks.ts': TASKS, 'enqueue.ts': ENQUEUE });
      expect((await runCli(['migrate'], project.dir, t.env)).code).to.equal(0);
      configure({ database: t.url(project), tablePrefix: t.prefix });
    });
    after(async () => {
      const store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      resetConfiguration();
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('logs an unhandled rejection from task code with the task, and keeps running', async () => {
      const [id] = await enqueue('forgets');
      const r = await runCli(['process-tasks', '--batch', '--no-startup-delay', '--log-format', 'json'], project.dir, t.env);
      expect(r.code, r.stderr).to.equal(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const rejection = lines.find((l) => /unhandled promise rejection/.test(String(l.msg)))!;
      expect(rejection.level).to.equal('error');
      expect(String(rejection.error)).to.match(/forgotten rejection 1/);
      expect(rejection).to.include({ id, name: 'forgets' });
      expect((await getResult(id!)).status).to.equal('SUCCESSFUL');
    });

    it('on an uncaught exception, releases the in-flight tasks (attempt given back) and exits 1', async () => {
      const [boom, other] = await enqueue('explodes', 'slow');
      const w = startCli(['process-tasks', '--concurrency', '2', '--no-startup-delay', '--sleep', '0.1', '--log-format', 'json'], project.dir, t.env);
      const r = await w.exited;
      expect(r.code).to.equal(1);
      expect(r.stdout).to.match(/uncaught exception: releasing in-flight tasks and exiting/);
      expect(r.stdout).to.match(/thrown outside any promise/);
      await waitUntil(async () => (await getResult(boom!)).status === 'READY' && (await getResult(other!)).status === 'READY', 'both tasks to be ready again');
      for (const id of [boom!, other!]) {
        const res = await getResult(id);
        expect(res.attempts).to.equal(0);
      }
    });
  });
}

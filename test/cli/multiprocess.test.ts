/**
 * Several processes on one SQLite file: two workers run while a third process enqueues 1,000
 * tasks. Every task runs exactly once and no error (SQLITE_BUSY, "database is locked") surfaces.
 */
import { expect } from 'chai';
import path from 'node:path';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { makeProject, runCli, spawnNode, startCli, TSX_LOADER, type Project } from '../helpers/project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { ENQUEUE_SCRIPT, RECORD_TASKS, ranLines } from '../helpers/record-project.js';

describe('two workers and an enqueuing process on one SQLite file', function () {
  this.timeout(120_000);
  let project: Project;

  before(() => {
    project = makeProject({ 'tasks.ts': RECORD_TASKS, 'enqueue.ts': ENQUEUE_SCRIPT });
  });
  after(async () => {
    forgetStores();
    await closeConnections();
    project.remove();
  });

  it('runs each of 1,000 tasks exactly once with no error in any process', async () => {
    const runLog = path.join(project.dir, 'ran.log');
    const env = { RUN_LOG: runLog };
    expect((await runCli(['migrate'], project.dir, env)).code).to.equal(0);
    const args = ['process-tasks', '--sleep', '0.05', '--no-startup-delay', '--duration', '100'];
    const workers = [startCli(args, project.dir, env), startCli(args, project.dir, env)];
    const enqueuer = spawnNode(['--import', TSX_LOADER, 'enqueue.ts', '1', '1000'], project.dir, env);
    const enq = await enqueuer.exited;
    expect(enq.code, enq.stderr).to.equal(0);

    const store = await storeFor(await settingsFor(`sqlite:${path.join(project.dir, 'bgtasks.sqlite3')}`, 'bgtasks_', project.dir));
    await waitUntil(
      async () => {
        const [{ n }] = (await store.knex(store.tables.completed).count({ n: '*' })) as Array<{ n: unknown }>;
        return Number(n) === 1000;
      },
      '1,000 completed tasks',
      90_000,
      100,
    );
    for (const w of workers) w.child.kill('SIGTERM');
    const results = await Promise.all(workers.map((w) => w.exited));
    for (const r of [...results, enq]) {
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.equal('');
      expect(r.stdout).not.to.match(/ERROR|SQLITE_BUSY|database is locked/);
    }
    const lines = ranLines(runLog);
    const ns = lines.map((l) => Number(l.split(' ')[0])).sort((a, b) => a - b);
    expect(ns).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i + 1));
    // Both workers took part.
    const pids = new Set(lines.map((l) => l.split(' ')[1]));
    expect(pids.size).to.equal(2);
  });
});

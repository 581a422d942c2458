/**
 * Scenario SQLITE-01 (docs/scenarios.md): six processes on one SQLite file for 20 s (three
 * `process-tasks` workers and three applications enqueuing one task at a time), while a second
 * program takes the file's write lock twice and holds it for 4 s each time. No process may see
 * SQLITE_BUSY or "database is locked", no enqueue may fail, and every task runs exactly once.
 * The 8-process, 60 s soak is for the bench, not CI.
 */
import { expect } from 'chai';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { killLeftovers, makeProject, REPO, runCli, spawnNode, startCli, TSX_LOADER, type Project, type Spawned } from '../helpers/project.js';
import { pollUntil } from '../helpers/processes.js';
import { duplicates, EFFECT_TASKS, ENQUEUING_APP, enqueueOutcomes, expectRunning, outputOf, runsPerTask } from './fixtures.js';

/** `node -e LOCKER FILE MS`: takes the write lock (BEGIN IMMEDIATE), holds it MS, commits, prints its wait. */
const LOCKER = `
const sqlite3 = require(${JSON.stringify(path.join(REPO, 'node_modules', 'sqlite3'))});
const db = new sqlite3.Database(process.argv[1]);
db.configure('busyTimeout', 30000);
const t0 = Date.now();
db.exec('BEGIN IMMEDIATE', (err) => {
  if (err) throw err;
  process.stdout.write('locked after ' + (Date.now() - t0) + ' ms\\n');
  setTimeout(() => db.exec('COMMIT', (e) => { if (e) throw e; db.close(); }), Number(process.argv[2]));
});
`;

const BUSY = /SQLITE_BUSY|database is locked/i;

describe('scenarios on one SQLite file [sqlite]', function () {
  this.timeout(120_000);
  let project: Project;
  let file: string;
  let fx: Knex;
  const children: Spawned[] = [];

  before(async () => {
    project = makeProject({ 'tasks.ts': EFFECT_TASKS, 'app.ts': ENQUEUING_APP }, ['knex']);
    file = path.join(project.dir, 'bgtasks.sqlite3');
    const effects = path.join(project.dir, 'effects.sqlite3');
    fx = knexFactory({ client: 'sqlite3', connection: { filename: effects }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
    await fx.schema.createTable('effects', (t) => {
      t.integer('n').notNullable();
      t.integer('pid').notNullable();
    });
    const m = await runCli(['migrate'], project.dir);
    expect(m.code, m.stderr + m.stdout).to.equal(0);
  });
  after(async () => {
    await killLeftovers(children);
    await fx?.destroy();
    project?.remove();
  });

  it('SQLITE-01: 3 workers and 3 enqueuing apps for 20 s, the write lock held twice by another program: no SQLITE_BUSY surfaced, nothing lost, nothing run twice', async function () {
    this.timeout(120_000);
    const env = { EFFECTS_URL: `sqlite:${path.join(project.dir, 'effects.sqlite3')}`, EFFECTS_TABLE: 'effects', EFFECT_MS: '5' };
    const stopFile = path.join(project.dir, 'stop-apps');
    const started = Date.now();
    const workers = [1, 2, 3].map(() => startCli(['process-tasks', '--no-startup-delay', '--sleep', '0.1', '--concurrency', '2'], project.dir, env));
    const apps = [0, 1, 2].map((i) => spawnNode(['--import', TSX_LOADER, 'app.ts', stopFile, '100000', String(i * 100_000)], project.dir, env));
    children.push(...workers, ...apps);
    try {
      const lockerOutput: string[] = [];
      for (const at of [5_000, 12_000]) {
        await pollUntil(() => Date.now() - started >= at, `${at / 1000} s into the run`, 30_000, 50);
        const locker = await spawnNode(['-e', LOCKER, file, '4000'], project.dir).exited;
        expect(locker.code, locker.stderr).to.equal(0);
        lockerOutput.push(locker.stdout.trim());
      }
      await pollUntil(() => Date.now() - started >= 20_000, '20 s of run', 30_000, 50);
      writeFileSync(stopFile, '');
      const appResults = await Promise.all(apps.map((a) => a.exited));
      const outcomes = appResults.flatMap((r) => enqueueOutcomes(r.stdout));
      const db = knexFactory({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true, pool: { min: 1, max: 1, afterCreate: (c: { configure: (k: string, v: number) => void }, done: (e: Error | null, c: unknown) => void) => { c.configure('busyTimeout', 30_000); done(null, c); } } });
      try {
        const pending = async () => Number(((await db('bgtasks_tasks').count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
        await pollUntil(async () => (await pending()) === 0, 'every enqueued task to finish', 60_000, 100);
        for (const w of workers) expectRunning(w, 'a worker');
        for (const w of workers) w.child.kill('SIGTERM');
        const workerResults = await Promise.all(workers.map((w) => w.exited));
        const failed = Number(((await db('bgtasks_completed_tasks').whereNotNull('failed_at').count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
        const runs = runsPerTask(await fx('effects').select('n'));
        const slowest = Math.max(...outcomes.map((o) => o.ms));
        process.stdout.write(`      ${outcomes.length} enqueues (slowest ${slowest} ms), ${runs.size} tasks ran; the lock holder: ${lockerOutput.join(', ')}\n`);

        for (const [i, r] of appResults.entries()) {
          expect(r.code, `app ${i}: ${r.stderr}`).to.equal(0);
          expect(r.stderr + r.stdout, `app ${i}`).not.to.match(BUSY);
        }
        for (const [i, r] of workerResults.entries()) {
          expect(r.code, `worker ${i}: ${outputOf(workers[i]!)}`).to.equal(0);
          expect(r.stderr, `worker ${i} stderr`).to.equal('');
          expect(r.stdout, `worker ${i}`).not.to.match(BUSY);
          expect(r.stdout, `worker ${i}`).not.to.match(/ ERROR /);
        }
        expect(outcomes.filter((o) => !o.ok), 'failed enqueues').to.deep.equal([]);
        expect(outcomes.length, 'enqueues in 20 s').to.be.greaterThan(100);
        expect(runs.size).to.equal(outcomes.length);
        expect(outcomes.filter((o) => !runs.has(o.n)).map((o) => o.n), 'enqueued tasks that never ran').to.deep.equal([]);
        expect(duplicates(runs), 'tasks that ran more than once').to.deep.equal([]);
        expect(failed, 'failed tasks').to.equal(0);
        // The enqueues that met the held lock waited it out (4 s) within the busy timeout (15 s).
        expect(slowest).to.be.lessThan(15_000);
      } finally {
        await db.destroy();
      }
    } finally {
      if (!existsSync(stopFile)) writeFileSync(stopFile, '');
    }
  });
});

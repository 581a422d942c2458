/**
 * Scenario SQLITE-01 (docs/scenarios.md): six processes on one SQLite file for 20 s (three
 * `process-tasks` workers and three applications enqueuing one task at a time), while a second
 * program takes the file's write lock twice and holds it for 4 s each time. No process may see
 * SQLITE_BUSY or "database is locked", no enqueue may fail, and every task runs exactly once.
 * The 8-process, 60 s soak is SQLITE-02, in the bench (bench/scenarios/sqlite-soak.ts),
 * on the same crowd (sqlite-crowd.ts).
 */
import { CLI, killLeftovers, makeProject, type Project, type Spawned } from '../helpers/project.js';
import { EFFECT_TASKS, ENQUEUING_APP } from './fixtures.js';
import { checkCrowd, prepareCrowd, runCrowd, type SqliteCrowd } from './sqlite-crowd.js';

describe('scenarios on one SQLite file [sqlite]', function () {
  this.timeout(120_000);
  let project: Project;
  let crowd: SqliteCrowd;
  const children: Spawned[] = [];

  before(async () => {
    project = makeProject({ 'tasks.ts': EFFECT_TASKS, 'app.ts': ENQUEUING_APP }, ['knex']);
    crowd = await prepareCrowd(project.dir, CLI);
  });
  after(async () => {
    await killLeftovers(children);
    await crowd?.close();
    project?.remove();
  });

  it('SQLITE-01: 3 workers and 3 enqueuing apps for 20 s, the write lock held twice by another program: no SQLITE_BUSY surfaced, nothing lost, nothing run twice', async function () {
    this.timeout(120_000);
    const r = await runCrowd(crowd, {
      workers: 3,
      apps: 3,
      concurrency: 2,
      durationMs: 20_000,
      locks: [
        { atMs: 5_000, holdMs: 4_000 },
        { atMs: 12_000, holdMs: 4_000 },
      ],
      onSpawn: (s) => children.push(s),
    });
    const slowest = Math.max(...r.outcomes.map((o) => o.ms));
    process.stdout.write(`      ${r.outcomes.length} enqueues (slowest ${slowest} ms), ${r.runs.size} tasks ran; the lock holder: ${r.lockerOutput.join(', ')}\n`);
    // The enqueues that met the held lock waited it out (4 s) within the busy timeout (15 s).
    checkCrowd(r, { minEnqueues: 100, maxEnqueueMs: 15_000 });
  });
});

/**
 * SQLITE-02 (docs/scenarios.md), a soak: 8 processes on one SQLite file for 60 s, 4 `process-tasks`
 * workers and 4 applications enqueuing one task at a time, while another program takes the
 * file's write lock every 10 s and holds it for 4 s. SQLITE-01 is its short version in CI; both
 * run the same crowd and the same checks (test/scenarios/sqlite-crowd.ts), which throw when
 * anything surfaced SQLITE_BUSY or "database is locked", an enqueue failed, or a task was lost,
 * failed or ran twice. Run by `npm run bench -- --soak`, never by the quick CI run.
 */
import { killLeftovers, type Spawned } from '../../test/helpers/project.js';
import { EFFECT_TASKS, ENQUEUING_APP } from '../../test/scenarios/fixtures.js';
import { checkCrowd, periodicLocks, prepareCrowd, runCrowd } from '../../test/scenarios/sqlite-crowd.js';
import { makeProject, trackChild } from '../lib/cli.js';
import { measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { percentile } from '../lib/stats.js';

const WORKERS = 4;
const APPS = 4;
const CONCURRENCY = 2;
const LOCK_FIRST_MS = 5_000;
const LOCK_EVERY_MS = 10_000;
const LOCK_HOLD_MS = 4_000;
/** The library's SQLite busy timeout is 15 s: an enqueue that met a 4 s hold must end well within it. */
const MAX_ENQUEUE_MS = 15_000;

export const sqliteSoakScenario: Scenario = {
  name: 'sqlite-soak',
  title: 'SQLITE-02: 8 processes on one SQLite file, its write lock held periodically (soak)',
  soak: true,
  dbs: ['sqlite'],
  method: (s) =>
    `${WORKERS} \`process-tasks --concurrency ${CONCURRENCY} --sleep 0.1\` workers and ${APPS} applications that each enqueue one task at a time (10 ms apart) ` +
    `run on one SQLite file (WAL, the library's defaults) for ${s.sqliteSoakSeconds} s. Every ${LOCK_EVERY_MS / 1000} s from ${LOCK_FIRST_MS / 1000} s on, ` +
    `another program takes the file's write lock (\`BEGIN IMMEDIATE\`) and holds it for ${LOCK_HOLD_MS / 1000} s (the last hold ends before the run does). ` +
    'Each task waits 5 ms and inserts a row into a database of its own, so a second run shows as a second row. Then the workers finish what is left and get SIGTERM. ' +
    `The run fails unless: no process printed \`SQLITE_BUSY\` or \`database is locked\`, no enqueue failed and each took under ${MAX_ENQUEUE_MS / 1000} s, ` +
    'every enqueued task ran exactly once and none failed, and every worker exited 0 with nothing on stderr and no ERROR line ' +
    '(the checks of SQLITE-01, test/scenarios/sqlite-crowd.ts). One run per figure.',
  async run(ctx: Context): Promise<Measurement[]> {
    const durationMs = ctx.sizes.sqliteSoakSeconds * 1000;
    const project = makeProject({ 'tasks.ts': EFFECT_TASKS, 'app.ts': ENQUEUING_APP }, ['knex']);
    const children: Spawned[] = [];
    try {
      const crowd = await prepareCrowd(project.dir, project.cli);
      try {
        const locks = periodicLocks(durationMs, LOCK_FIRST_MS, LOCK_EVERY_MS, LOCK_HOLD_MS);
        const r = await runCrowd(crowd, { workers: WORKERS, apps: APPS, concurrency: CONCURRENCY, durationMs, locks, onSpawn: (s) => (children.push(s), trackChild(s.child)) });
        const ms = r.outcomes.map((o) => o.ms);
        const lockWaits = r.lockerOutput.map((l) => Number(/(\d+) ms/.exec(l)?.[1] ?? NaN));
        ctx.log(`  ${r.outcomes.length} enqueues (p50 ${percentile(ms, 50)} ms, p99 ${percentile(ms, 99).toFixed(0)} ms, slowest ${Math.max(...ms)} ms), ${r.runs.size} tasks ran; the lock holder: ${r.lockerOutput.join(', ')}`);
        checkCrowd(r, { minEnqueues: 100, maxEnqueueMs: MAX_ENQUEUE_MS });
        const held = `${locks.length} holds of ${LOCK_HOLD_MS / 1000} s`;
        return [
          measured('sqlite-soak', 'enqueued', `Tasks enqueued in ${ctx.sizes.sqliteSoakSeconds} s by ${APPS} applications, each run exactly once`, 'sqlite', 'tasks', [r.outcomes.length], `${held}; none lost, none run twice, none failed, no enqueue failed, no SQLITE_BUSY anywhere`),
          measured('sqlite-soak', 'enqueue-p50', 'Enqueue, p50', 'sqlite', 'ms', [percentile(ms, 50)]),
          measured('sqlite-soak', 'enqueue-p99', 'Enqueue, p99', 'sqlite', 'ms', [percentile(ms, 99)]),
          measured('sqlite-soak', 'enqueue-max', 'Enqueue, slowest (waited out a held lock)', 'sqlite', 'ms', [Math.max(...ms)]),
          measured('sqlite-soak', 'locker-wait', 'The lock holder, longest wait for the write lock', 'sqlite', 'ms', [Math.max(...lockWaits)], `its waits: ${r.lockerOutput.join(', ')}`),
        ];
      } finally {
        await killLeftovers(children);
        await crowd.close();
      }
    } finally {
      project.remove();
    }
  },
};

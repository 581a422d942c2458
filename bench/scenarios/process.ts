/**
 * Scenario 2, processing: N due no-op tasks run by the real CLI (`process-tasks --batch`), in one
 * process at concurrency 1 and 16, and in two processes at 16. The figure is N divided by the
 * window from the first claim to the last completion, both read from the completed rows
 * (`started_at` is the claim time, `finished_at` the time the result was handed to the settler,
 * at most one settle flush before it commits). It leaves out process start-up, which the cold-start
 * scenario measures; the wall clock including start-up is reported beside it.
 */
import { enqueueDue, releaseLibrary, useTables } from '../lib/api.js';
import { startWorker, succeeded } from '../lib/cli.js';
import { BenchTables } from '../lib/databases.js';
import { expectAllDone, runWindow } from '../lib/results.js';
import { count, measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { perSecond } from '../lib/stats.js';

interface Variant {
  key: string;
  name: string;
  processes: number;
  concurrency: number;
}

const VARIANTS: Variant[] = [
  { key: 'c1', name: '1 process, concurrency 1', processes: 1, concurrency: 1 },
  { key: 'c16', name: '1 process, concurrency 16', processes: 1, concurrency: 16 },
  { key: '2x16', name: '2 processes, concurrency 16 each', processes: 2, concurrency: 16 },
];

export function workerFlags(concurrency: number, prefetch: number | null): string[] {
  return ['--concurrency', String(concurrency), ...(prefetch === null ? [] : ['--prefetch', String(prefetch)])];
}

export const processScenario: Scenario = {
  name: 'process',
  title: 'Processing throughput',
  method: (s) =>
    `${count(s.process)} due no-op tasks (enqueued with bulk()), then \`node dist/cli/index.js process-tasks --batch --no-startup-delay -q --concurrency C\` ` +
    'spawned in a temporary project whose tasks.ts defines the task. Throughput = N ÷ (last finished_at − first started_at) from the completed rows, so process ' +
    'start-up is excluded (see cold start); "wall clock" = N ÷ (spawn → exit of the last process). Every run checks that all N succeeded and none is left.',
  async run(ctx: Context): Promise<Measurement[]> {
    const n = ctx.sizes.process;
    const db = ctx.target.name;
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'process');
    useTables(t);
    const out: Measurement[] = [];
    try {
      for (const v of VARIANTS) {
        const window: number[] = [];
        const wall: number[] = [];
        for (let r = 0; r < ctx.runs; r++) {
          await t.empty();
          await enqueueDue(n);
          const args = ['--batch', '--no-startup-delay', '-q', ...workerFlags(v.concurrency, ctx.prefetch)];
          const workers = Array.from({ length: v.processes }, () => startWorker(ctx.project, t, args));
          const exits = await Promise.all(workers.map((w) => succeeded(w, `process ${v.name}`)));
          const w = await runWindow(t);
          expectAllDone(w, n, `process ${v.name}`);
          window.push(perSecond(n, w.lastFinishMs - w.firstClaimMs));
          wall.push(perSecond(n, Math.max(...exits.map((e) => e.atPerf)) - Math.min(...workers.map((x) => x.spawnedAtPerf))));
          ctx.log(`  ${v.name}, run ${r + 1}: ${Math.round(window[r]!)} tasks/s (wall clock ${Math.round(wall[r]!)}/s)`);
        }
        out.push(measured('process', v.key, `${count(n)} tasks, ${v.name}`, db, 'tasks/s', window));
        out.push(measured('process', `${v.key}-wall`, `${count(n)} tasks, ${v.name}, wall clock incl. start-up`, db, 'tasks/s', wall));
      }
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    return out;
  },
};

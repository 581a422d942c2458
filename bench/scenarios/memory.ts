/**
 * Scenario 5, memory: a long-running `process-tasks --concurrency 16` works through N due tasks
 * while this process samples its resident set size (Linux /proc) and the completed count; RSS is
 * read when the count first passes the low mark and when it reaches N. A leak per task shows as a
 * ratio well above 1.
 */
import { enqueueDue, releaseLibrary, useTables } from '../lib/api.js';
import { rssKb, startWorker, stopWorker } from '../lib/cli.js';
import { BenchTables } from '../lib/databases.js';
import { count, measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { sleep } from '../lib/timing.js';
import { workerFlags } from './process.js';

const SAMPLE_MS = 100;
const MIB = 1024;

export const memoryScenario: Scenario = {
  name: 'memory',
  title: 'Worker memory',
  method: (s) =>
    `${count(s.memoryHigh)} due tasks; a long-running \`process-tasks --no-startup-delay -q --concurrency 16 --sleep 0.1\`; every ${SAMPLE_MS} ms this process reads the ` +
    `worker's RSS (/proc/PID/status) and the completed count. "After ${count(s.memoryLow)}" is the first sample at or past that count, "after ${count(s.memoryHigh)}" the first sample with all done.`,
  async run(ctx: Context): Promise<Measurement[]> {
    const { memoryLow: low, memoryHigh: high } = ctx.sizes;
    const db = ctx.target.name;
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'memory');
    useTables(t);
    const atLow: number[] = [];
    const atHigh: number[] = [];
    const peak: number[] = [];
    try {
      for (let r = 0; r < ctx.runs; r++) {
        await t.empty();
        await enqueueDue(high);
        const w = startWorker(ctx.project, t, ['--no-startup-delay', '-q', '--sleep', '0.1', ...workerFlags(16, ctx.prefetch)]);
        let lowRss: number | null = null;
        let lowCount = 0;
        let highRss: number | null = null;
        let max = 0;
        const deadline = Date.now() + 60_000 + high * 10;
        try {
          while (highRss === null) {
            if (Date.now() > deadline) throw new Error(`memory: ${high} tasks did not complete in time`);
            await sleep(SAMPLE_MS);
            const done = await t.count(t.completed);
            const rss = rssKb(w.pid);
            if (rss === null) throw new Error('memory: cannot read the worker\'s RSS (has it exited?)');
            max = Math.max(max, rss);
            if (lowRss === null && done >= low) {
              lowRss = rss;
              lowCount = done;
            }
            if (done >= high) highRss = rss;
          }
        } finally {
          await stopWorker(w, 'memory');
        }
        atLow.push(lowRss! / MIB);
        atHigh.push(highRss / MIB);
        peak.push(max / MIB);
        ctx.log(`  run ${r + 1}: RSS ${atLow[r]!.toFixed(1)} MiB at ${lowCount} done, ${atHigh[r]!.toFixed(1)} MiB at ${high}, peak ${peak[r]!.toFixed(1)} MiB`);
      }
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    return [
      measured('memory', 'rss-low', `RSS after ${count(low)} tasks`, db, 'MiB', atLow),
      measured('memory', 'rss-high', `RSS after ${count(high)} tasks`, db, 'MiB', atHigh),
      measured('memory', 'rss-peak', `peak RSS during ${count(high)} tasks`, db, 'MiB', peak),
      measured('memory', 'rss-ratio', `RSS after ${count(high)} ÷ after ${count(low)}`, db, 'ratio', atHigh.map((v, i) => v / atLow[i]!)),
    ];
  },
};

/**
 * Metrics cost (issue 16): the processing throughput of one worker (concurrency 16) with
 * `--metrics-port` against the same worker without it, runs interleaved so that drift in the
 * machine's speed hits both alike; the figure is their ratio. Then the queue-depth gauges of the
 * dashboard's /metrics over a backlog of not-due rows: the one aggregate query they make (at most
 * once per 5 s), and a scrape served from its cache.
 */
import { getSettings } from '../../core/index.js';
import { queueMetrics } from '../../core/api/metrics.js';
import { queueDepth } from '../../core/store/queue-depth.js';
import { storeFor } from '../../core/store/open.js';
import { WorkerMetrics } from '../../core/worker/metrics.js';
import { enqueueDue, releaseLibrary, useTables } from '../lib/api.js';
import { startWorker, succeeded } from '../lib/cli.js';
import { BenchTables } from '../lib/databases.js';
import { expectAllDone, runWindow } from '../lib/results.js';
import { insertNotDue } from '../lib/rows.js';
import { count, measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { median, perSecond } from '../lib/stats.js';
import { workerFlags } from './process.js';

/** Cached scrapes timed per run (each a fraction of a millisecond). */
const SCRAPES = 200;

/**
 * What metrics add to one attempt in the worker, in microseconds, measured in this process: the
 * running gauge up and down and the attempt counted (outcome counter, duration histogram), over
 * a mix of task names. A figure that the load of a shared machine barely moves, unlike the ratio.
 */
async function hotPathMicros(calls: number): Promise<number> {
  const m = await WorkerMetrics.create({ workerId: 'bench', version: null, concurrency: 16 });
  const names = Array.from({ length: 8 }, (_, i) => `task${i}`);
  for (let i = 0; i < 1000; i++) m.attempt(names[i % 8]!, 'q', 'succeeded', 1);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) {
    m.attemptStarted();
    m.attemptEnded();
    m.attempt(names[i % 8]!, i % 3 === 0 ? null : 'q', 'succeeded', (i % 50) / 10);
  }
  const us = ((performance.now() - t0) * 1000) / calls;
  m.close();
  return us;
}

export const metricsScenario: Scenario = {
  name: 'metrics',
  title: 'Metrics cost',
  method: (s) =>
    `${count(s.process)} due no-op tasks run by \`process-tasks --batch --concurrency 16\`, once with \`--metrics-port 0\` and once without, alternating; ` +
    'throughput as in the processing scenario (N ÷ first claim → last finish); the figure is with ÷ without, per pair of runs. ' +
    `Queue depth: ${count(s.scaleRows)} not-due pending rows; the one aggregate query of the /metrics queue gauges, timed alone, and ${SCRAPES} scrapes served from its 5-s cache (median).`,
  async run(ctx: Context): Promise<Measurement[]> {
    const n = ctx.sizes.process;
    const db = ctx.target.name;
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'metrics');
    useTables(t);
    const out: Measurement[] = [];
    try {
      const without: number[] = [];
      const withMetrics: number[] = [];
      const ratio: number[] = [];
      for (let r = 0; r < ctx.runs; r++) {
        const pair: number[] = [];
        // Alternate which goes first, so neither always runs on a warmer database.
        for (const metrics of r % 2 === 0 ? [false, true] : [true, false]) {
          await t.empty();
          await enqueueDue(n);
          const args = ['--batch', '--no-startup-delay', '-q', ...workerFlags(16, ctx.prefetch), ...(metrics ? ['--metrics-port', '0'] : [])];
          await succeeded(startWorker(ctx.project, t, args), `metrics ${metrics ? 'on' : 'off'}`);
          const w = await runWindow(t);
          expectAllDone(w, n, `metrics ${metrics ? 'on' : 'off'}`);
          const rate = perSecond(n, w.lastFinishMs - w.firstClaimMs);
          (metrics ? withMetrics : without).push(rate);
          pair[metrics ? 1 : 0] = rate;
        }
        ratio.push(pair[1]! / pair[0]!);
        ctx.log(`  run ${r + 1}: ${Math.round(pair[0]!)} tasks/s without metrics, ${Math.round(pair[1]!)} with (${(100 * ratio[r]!).toFixed(1)} %)`);
      }
      out.push(measured('metrics', 'off', `${count(n)} tasks, concurrency 16, without metrics`, db, 'tasks/s', without));
      out.push(measured('metrics', 'on', `${count(n)} tasks, concurrency 16, --metrics-port`, db, 'tasks/s', withMetrics));
      out.push(measured('metrics', 'ratio', 'Throughput with metrics ÷ without', db, 'ratio', ratio));
      const micros: number[] = [];
      for (let r = 0; r < ctx.runs; r++) micros.push(await hotPathMicros(ctx.mode === 'quick' ? 20_000 : 200_000));
      const perTaskUs = 1e6 / median(without);
      out.push(
        measured('metrics', 'hot-path', 'Metrics work per attempt, in process', db, 'µs', micros, `${(100 * median(micros) / perTaskUs).toFixed(2)} % of an attempt's ${perTaskUs.toFixed(0)} µs at the throughput without metrics`),
      );

      await t.empty();
      await insertNotDue(t, ctx.sizes.scaleRows, Date.now());
      const store = await storeFor(await getSettings());
      const queryMs: number[] = [];
      const scrapeMs: number[] = [];
      for (let r = 0; r < ctx.runs; r++) {
        const q0 = performance.now();
        await queueDepth(store, Date.now());
        queryMs.push(performance.now() - q0);
        const m = queueMetrics(store);
        await m.collect();
        const times: number[] = [];
        for (let i = 0; i < SCRAPES; i++) {
          const s0 = performance.now();
          await m.collect();
          times.push(performance.now() - s0);
        }
        scrapeMs.push(median(times));
        ctx.log(`  queue depth over ${count(ctx.sizes.scaleRows)} rows: query ${queryMs[r]!.toFixed(1)} ms, cached scrape ${scrapeMs[r]!.toFixed(3)} ms`);
      }
      out.push(measured('metrics', 'depth-query', `Queue-depth query, ${count(ctx.sizes.scaleRows)} pending rows (once per 5 s at most)`, db, 'ms', queryMs));
      out.push(measured('metrics', 'depth-scrape', `/metrics queue gauges, scrape from the cache (${count(ctx.sizes.scaleRows)} pending rows)`, db, 'ms', scrapeMs));
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    return out;
  },
};

/**
 * Scenario 3, start latency of an idle worker: a long-running `process-tasks` (concurrency 1)
 * waits with `--sleep 0.01` (on PostgreSQL also with the default sleep, where LISTEN/NOTIFY is
 * meant to wake it); this process enqueues N tasks at a steady rate through the API; latency =
 * started_at − enqueued_at of each completed row (claim time minus enqueue time, both epoch ms
 * from the same machine's clock).
 */
import { benchNoop, releaseLibrary, useTables } from '../lib/api.js';
import { startWorker, stopWorker } from '../lib/cli.js';
import { BenchTables } from '../lib/databases.js';
import { count, measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { percentile } from '../lib/stats.js';
import { sleep, waitUntil } from '../lib/timing.js';

interface Variant {
  key: string;
  name: string;
  sleepArgs: string[];
  /** Longest poll interval, to bound how long the last task may wait. */
  pollS: number;
}

function variants(ctx: Context): Variant[] {
  const v: Variant[] = [{ key: 'fast', name: '--sleep 0.01', sleepArgs: ['--sleep', '0.01'], pollS: 0.01 }];
  if (ctx.target.name === 'postgres') v.push({ key: 'default', name: 'default --sleep', sleepArgs: [], pollS: 5 });
  return v;
}

/** Enqueues `n` tasks at `rate` per second on a fixed schedule (no drift); returns their ids. */
async function enqueueAtRate(n: number, rate: number): Promise<string[]> {
  const ids: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    ids.push((await benchNoop(i)).id);
  }
  return ids;
}

export const latencyScenario: Scenario = {
  name: 'latency',
  title: 'Start latency of an idle worker',
  method: (s) =>
    `A long-running \`process-tasks --no-startup-delay -q\` (concurrency 1) with \`--sleep 0.01\` (on PostgreSQL also with the default sleep) is warmed up with one task; ` +
    `then this process enqueues ${count(s.latencyTasks)} tasks at ${s.latencyRate}/s through the API. Latency = started_at − enqueued_at of each completed row ` +
    '(claim time minus enqueue time, epoch ms of the same clock); p50 and p99 interpolate between ranks.',
  async run(ctx: Context): Promise<Measurement[]> {
    const { latencyTasks: n, latencyRate: rate } = ctx.sizes;
    const db = ctx.target.name;
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'latency');
    useTables(t);
    const out: Measurement[] = [];
    try {
      for (const v of variants(ctx)) {
        const p50: number[] = [];
        const p99: number[] = [];
        for (let r = 0; r < ctx.runs; r++) {
          await t.empty();
          const worker = startWorker(ctx.project, t, ['--no-startup-delay', '-q', ...v.sleepArgs]);
          try {
            // The first task proves the worker is up and polling (start-up is not latency).
            await benchNoop(-1);
            await waitUntil(async () => (await t.count(t.completed)) === 1, 'the warm-up task', 30_000, 10);
            const ids = await enqueueAtRate(n, rate);
            await waitUntil(async () => (await t.count(t.completed)) === n + 1, `${n} tasks to complete`, 30_000 + v.pollS * 2000, 50);
            const rows = (await t.knex(t.completed).select('started_at', 'enqueued_at').whereIn('task_id', ids)) as Array<{ started_at: unknown; enqueued_at: unknown }>;
            const lat = rows.map((x) => Number(x.started_at) - Number(x.enqueued_at));
            p50.push(percentile(lat, 50));
            p99.push(percentile(lat, 99));
          } finally {
            await stopWorker(worker, `latency ${v.name}`);
          }
          ctx.log(`  ${v.name}, run ${r + 1}: p50 ${p50[r]!.toFixed(1)} ms, p99 ${p99[r]!.toFixed(1)} ms`);
        }
        out.push(measured('latency', `${v.key}-p50`, `${v.name}: p50 of start − enqueue`, db, 'ms', p50));
        out.push(measured('latency', `${v.key}-p99`, `${v.name}: p99 of start − enqueue`, db, 'ms', p99));
      }
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    return out;
  },
};

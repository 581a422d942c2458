/**
 * Scenario 7, flow control (issue 17). (a) Throughput of an in-process worker (createWorker,
 * concurrency 16) on tasks without any limit, and on tasks that carry one of 100 concurrency keys
 * with a per-key limit of 1: the ratio says what fairness and the key limit cost. (b) Claim cost
 * in one queue while another, paused queue holds a large backlog of due tasks, against the same
 * claims on an empty table (the paused rows are due, so the claim must skip them, not merely not
 * reach them as it does with not-due rows in the scale scenario).
 *
 * "No limits: claim throughput unchanged" compares with the commit before flow control landed;
 * that comparison is a run of the process scenario on both commits in one sitting, reported in
 * docs/benchmarks.md beside this scenario's figures.
 */
import { background, createWorker, pauseQueue, silentLogger } from '../../core/index.js';
// Internal on purpose, as in scale.ts: the claim is timed where the worker calls it.
import { Store } from '../../core/store/store.js';
import { benchNoop, releaseLibrary, useTables } from '../lib/api.js';
import { BenchTables, type DbName } from '../lib/databases.js';
import { insertNumbered, literal, type ColumnExprs } from '../lib/rows.js';
import { count, measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { median } from '../lib/stats.js';
import { timed } from '../lib/timing.js';

const KEYS = 100;
const PAUSED_QUEUE = 'bench-paused';
const CHUNK = 10_000;

/** A no-op whose tasks carry one of 100 keys, at most one RUNNING per key across all workers. */
export const benchKeyed = background({ concurrencyKey: (n: number) => `k${n % KEYS}`, concurrencyLimit: 1 }, function benchKeyed(n: number): number {
  return n;
});

async function enqueueKeyed(n: number): Promise<void> {
  for (let i = 0; i < n; i += CHUNK) {
    const calls = Array.from({ length: Math.min(CHUNK, n - i) }, (_, k): [number] => [i + k]);
    await benchKeyed.bulk(calls);
  }
}

async function enqueuePlain(n: number): Promise<void> {
  for (let i = 0; i < n; i += CHUNK) {
    const calls = Array.from({ length: Math.min(CHUNK, n - i) }, (_, k): [number] => [i + k]);
    await benchNoop.bulk(calls);
  }
}

/** Tasks per second of one in-process worker (concurrency 16) running `n` enqueued tasks. */
async function throughput(t: BenchTables, n: number): Promise<number> {
  const worker = createWorker({ concurrency: 16, maxTasks: n, sleep: 0.01, logger: silentLogger });
  const r = await timed(async () => {
    await worker.start();
    const summary = await worker.done;
    if (summary.succeeded !== n) throw new Error(`flow: the worker ran ${summary.succeeded} of ${n} tasks`);
  });
  await t.knex(t.completed).truncate();
  return n / (r.ms / 1000);
}

type ClaimFn = (...args: unknown[]) => Promise<unknown[]>;

/** Median Store.claim time (ms) of a concurrency-1 worker running `m` due tasks, one claim each. */
async function claimRun(t: BenchTables, m: number): Promise<number> {
  await enqueuePlain(m);
  const proto = Store.prototype as unknown as { claim: ClaimFn };
  const original = proto.claim;
  const durations: number[] = [];
  proto.claim = async function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    try {
      return await original.apply(this, args);
    } finally {
      durations.push(performance.now() - t0);
    }
  };
  try {
    const worker = createWorker({ concurrency: 1, prefetch: 0, maxTasks: m, sleep: 0.01, logger: silentLogger });
    await worker.start();
    const summary = await worker.done;
    if (summary.succeeded !== m) throw new Error(`flow: the worker ran ${summary.succeeded} of ${m} tasks`);
  } finally {
    proto.claim = original;
  }
  await t.knex(t.completed).truncate();
  return median(durations);
}

/** `n` due tasks in the paused queue, generated straight into the table from one real row. */
async function insertPausedBacklog(t: BenchTables, n: number, nowMs: number): Promise<void> {
  const ref = await benchNoop(0);
  const row = (await t.knex(t.tasks).where('id', ref.id).first()) as Record<string, unknown>;
  await t.knex(t.tasks).where('id', ref.id).del();
  const exprs: ColumnExprs = {};
  for (const [k, v] of Object.entries(row)) if (k !== 'id' && v !== null) exprs[k] = literal(t, v);
  const cat = (...p: string[]) => (t.db === 'mysql' ? `CONCAT(${p.join(', ')})` : p.join(' || '));
  Object.assign(exprs, {
    args: cat(`'['`, '{n}', `']'`),
    hash: cat(`'paused'`, '{n}'),
    queue: literal(t, PAUSED_QUEUE),
    run_at: `${nowMs - 60_000} - {n}`,
    scheduled_at: `${nowMs - 60_000} - {n}`,
    enqueued_at: String(nowMs - 120_000),
  });
  await insertNumbered(t, t.tasks, n, exprs);
  if (t.db === 'postgres') await t.knex.raw(`ANALYZE ${t.tasks}`);
  if (t.db === 'mysql') await t.knex.raw(`ANALYZE TABLE ${t.tasks}`);
}

export const flowScenario: Scenario = {
  name: 'flow',
  title: 'Flow control: per-key limits and a paused backlog',
  method: (s) =>
    `Throughput: an in-process worker (createWorker, concurrency 16) runs ${count(s.process)} no-op tasks without limits, then ${count(s.process)} ` +
    `no-op tasks spread over ${KEYS} concurrency keys with a per-key limit of 1 (start of the worker to its last result; tasks enqueued with bulk() beforehand). ` +
    `Paused backlog: a concurrency-1 worker runs ${s.scaleClaims} due tasks and each Store.claim call is timed (median), first on an empty table, then with ` +
    `${count(s.scaleRows)} due tasks in a paused queue beside them (generated by INSERT … SELECT, then ANALYZE on MariaDB/PostgreSQL).`,
  async run(ctx: Context): Promise<Measurement[]> {
    const db: DbName = ctx.target.name;
    const n = ctx.sizes.process;
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'flow');
    useTables(t);
    const plain: number[] = [];
    const keyed: number[] = [];
    const empty: number[] = [];
    const paused: number[] = [];
    try {
      for (let r = 0; r < ctx.runs; r++) {
        await enqueuePlain(n);
        plain.push(await throughput(t, n));
        await enqueueKeyed(n);
        keyed.push(await throughput(t, n));
        ctx.log(`  run ${r + 1}: ${plain[r]!.toFixed(0)} tasks/s without limits, ${keyed[r]!.toFixed(0)} tasks/s with a per-key limit of 1 over ${KEYS} keys`);
      }
      for (let r = 0; r < ctx.runs; r++) empty.push(await claimRun(t, ctx.sizes.scaleClaims));
      await pauseQueue(PAUSED_QUEUE);
      const gen = await timed(() => insertPausedBacklog(t, ctx.sizes.scaleRows, Date.now()));
      ctx.log(`  generated ${count(ctx.sizes.scaleRows)} due rows in the paused queue in ${(gen.ms / 1000).toFixed(1)} s`);
      for (let r = 0; r < ctx.runs; r++) {
        paused.push(await claimRun(t, ctx.sizes.scaleClaims));
        ctx.log(`  claim run ${r + 1}: ${empty[r]!.toFixed(2)} ms empty, ${paused[r]!.toFixed(2)} ms beside the paused backlog`);
      }
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    return [
      measured('flow', 'unlimited', `throughput, concurrency 16, no limits`, db, 'tasks/s', plain),
      measured('flow', 'keyed', `throughput, concurrency 16, per-key limit 1 over ${KEYS} keys`, db, 'tasks/s', keyed),
      measured('flow', 'keyed-ratio', `per-key limit 1 over ${KEYS} keys ÷ no limits`, db, 'ratio', keyed.map((v, i) => v / plain[i]!)),
      measured('flow', 'claim-empty', 'claim, empty table', db, 'ms', empty),
      measured('flow', 'claim-paused', `claim, ${count(ctx.sizes.scaleRows)} due rows in a paused queue`, db, 'ms', paused),
      measured('flow', 'paused-ratio', `claim, ${count(ctx.sizes.scaleRows)} paused due rows ÷ empty`, db, 'ratio', paused.map((v, i) => v / empty[i]!)),
    ];
  },
};

/**
 * LONGTX-01 (docs/scenarios.md), a soak: a transaction held open for 10 minutes beside a steady
 * load, against a clean run of the same load on the same server. PostgreSQL: a REPEATABLE READ
 * transaction pins the vacuum horizon (xmin); MariaDB: a consistent-snapshot transaction stops
 * InnoDB's purge. Run by `npm run bench -- --soak`, never by the quick CI run.
 *
 * The load: one `process-tasks` worker (concurrency 16) that is never short of work, because this
 * process tops the backlog up with bulk enqueues whenever fewer than LOW tasks wait. Each phase
 * starts on emptied tables, warms up, then measures for the same window: throughput is the count of
 * tasks finished in the window (the completed rows' finished_at) over its length. The held phase
 * opens the transaction after the warm-up, holds it for the window, then commits it and keeps the
 * load running for a while, to see the dead rows go. Both phases run on a private server of the
 * same kind (bench/lib/private-server.ts): see there why not on the shared one.
 */
import { benchNoop, releaseLibrary, useTables } from '../lib/api.js';
import { loadAverage } from '../lib/machine.js';
import { startWorker, stopWorker } from '../lib/cli.js';
import { BenchTables, rawRows } from '../lib/databases.js';
import { holdTransaction, resetStatements, sampleDeadRows, topStatements, type DeadRows, type Holder, type StatementCost } from '../lib/long-transaction.js';
import { privateServerUnavailable, startPrivateServer } from '../lib/private-server.js';
import { measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { formatNumber } from '../lib/stats.js';
import { sleep } from '../lib/timing.js';
import { workerFlags } from './process.js';

/** The backlog is topped up whenever fewer than LOW tasks wait, CHUNK tasks per bulk(). */
const LOW = 4_000;
const CHUNK = 2_000;
const WARMUP_S = 15;
const SAMPLE_EVERY_MS = 10_000;

interface PhaseResult {
  /** Tasks finished in the measured window, per second. */
  rate: number;
  /** Tasks finished per minute of the window (the last minute may be shorter). */
  perMinute: number[];
  /** Tasks finished in the window. */
  finished: number;
  samples: DeadRows[];
  /** Held phase: after the commit. */
  after: DeadRows[];
  holderState: string[];
  enqueued: number;
  /** The statements that took the most time in the window. */
  statements: StatementCost[];
  /** The machine's load average (1, 5, 15 min) at the start and the end of the window. */
  load: [string, string];
}

/** Keeps the worker supplied: the largest id enqueued minus the largest id completed is the backlog (tasks run in id order). */
class SteadyLoad {
  enqueued = 0;
  private lastId = 0;
  private firstId = 0;
  private stopping = false;
  private readonly done: Promise<void>;

  constructor(private readonly t: BenchTables) {
    this.done = this.loop();
  }

  private async maxCompleted(): Promise<number> {
    const [r] = (await this.t.knex(this.t.completed).max({ m: 'task_id' })) as Array<{ m: unknown }>;
    return Math.max(Number(r?.m ?? 0), this.firstId - 1);
  }

  private async loop(): Promise<void> {
    let n = 0;
    while (!this.stopping) {
      if (this.lastId - (await this.maxCompleted()) >= LOW) {
        await sleep(20);
        continue;
      }
      const refs = await benchNoop.bulk(Array.from({ length: CHUNK }, (): [number] => [n++]));
      const ids = refs.map((r) => Number(r.id));
      if (this.firstId === 0) this.firstId = Math.min(...ids);
      this.lastId = Math.max(this.lastId, ...ids);
      this.enqueued += refs.length;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.done;
  }
}

/** Finished tasks per minute of [fromMs, toMs), from the completed rows (the finished_at index). */
async function finishedPerMinute(t: BenchTables, fromMs: number, toMs: number): Promise<number[]> {
  // The bucket as a literal: PostgreSQL sees `$1` and `$4` as two expressions in SELECT and GROUP BY.
  const bucket = `FLOOR((finished_at - ${Math.floor(fromMs)}) / 60000)`;
  const table = t.db === 'mysql' ? `\`${t.completed}\`` : `"${t.completed}"`;
  const rows = rawRows(t.db, await t.knex.raw(`SELECT ${bucket} AS m, COUNT(*) AS n FROM ${table} WHERE finished_at >= ? AND finished_at < ? GROUP BY ${bucket}`, [fromMs, toMs]));
  const out = Array.from({ length: Math.ceil((toMs - fromMs) / 60000) }, () => 0);
  for (const r of rows) out[Number(r.m)] = Number(r.n);
  return out;
}

/** Samples the dead rows every SAMPLE_EVERY_MS for `ms` (and once at the end). */
async function sampleFor(t: BenchTables, ms: number, each: (s: DeadRows) => Promise<void> | void): Promise<DeadRows[]> {
  const out: DeadRows[] = [];
  const end = Date.now() + ms;
  for (;;) {
    const s = await sampleDeadRows(t);
    out.push(s);
    await each(s);
    const left = end - Date.now();
    if (left <= 0) return out;
    await sleep(Math.min(SAMPLE_EVERY_MS, left));
  }
}

function describeSample(db: string, s: DeadRows): string {
  const mb = (b: number | null) => (b === null ? '' : `${(b / 1024 ** 2).toFixed(1)} MB`);
  return db === 'postgres'
    ? `n_dead_tup ${formatNumber(s.dead)}, n_live_tup ${formatNumber(s.live ?? NaN)}, heap ${mb(s.tableBytes)}, indexes ${mb(s.indexBytes)}, autovacuums ${s.autovacuums}`
    : `history list length ${formatNumber(s.dead)}, task table ${mb(s.tableBytes)}`;
}

const perCallUnit = (db: string) => (db === 'postgres' ? 'buffers' : 'rows examined');

async function phase(ctx: Context, t: BenchTables, url: string, held: boolean): Promise<PhaseResult> {
  const { longtxSeconds: seconds, longtxReleaseSeconds: releaseSeconds } = ctx.sizes;
  const db = t.db as 'mysql' | 'postgres';
  const label = held ? 'held' : 'clean';
  await t.empty();
  const worker = startWorker(ctx.project, t, ['--no-startup-delay', '-q', ...workerFlags(16, ctx.prefetch)]);
  const steady = new SteadyLoad(t);
  const holderState: string[] = [];
  let samples: DeadRows[];
  let after: DeadRows[] = [];
  let holder: Holder | null = null;
  let fromMs = 0;
  let statements: StatementCost[];
  const load: [string, string] = ['', ''];
  try {
    await sleep(WARMUP_S * 1000);
    if (held) {
      holder = await holdTransaction(db, url, t.completed);
      holderState.push(await holder.state());
      ctx.log(`  ${label}: transaction open (${holderState[0]})`);
    }
    await resetStatements(t);
    load[0] = loadAverage();
    fromMs = Date.now();
    let lastLog = -Infinity;
    samples = await sampleFor(t, seconds * 1000, (s) => {
      if (s.atMs - lastLog < 60_000) return;
      lastLog = s.atMs;
      ctx.log(`  ${label}, ${Math.round((s.atMs - fromMs) / 1000)} s: ${describeSample(db, s)}`);
    });
    load[1] = loadAverage();
    statements = await topStatements(t, 6);
    for (const st of statements) ctx.log(`  ${label}: ${formatNumber(st.totalMs)} ms in ${st.calls} calls, ${formatNumber(st.perCall)} ${perCallUnit(db)}/call: ${st.text}`);
    if (holder) {
      holderState.push(await holder.state());
      await holder.release();
      holder = null;
      ctx.log(`  ${label}: transaction committed (${holderState[1]}); the load goes on for ${releaseSeconds} s`);
      after = await sampleFor(t, releaseSeconds * 1000, () => {});
      ctx.log(`  ${label}, ${releaseSeconds} s after the commit: ${describeSample(db, after[after.length - 1]!)}`);
    }
  } finally {
    if (holder) await holder.release().catch(() => {});
    await steady.stop();
    await stopWorker(worker, `longtx ${label}`);
  }
  const perMinute = await finishedPerMinute(t, fromMs, fromMs + seconds * 1000);
  const finished = perMinute.reduce((a, b) => a + b, 0);
  const rate = finished / seconds;
  ctx.log(`  ${label}: ${formatNumber(rate)} tasks/s over ${seconds} s; per minute ${perMinute.map((n) => formatNumber(n)).join(', ')}`);
  return { rate, perMinute, finished, samples, after, holderState, enqueued: steady.enqueued, statements, load };
}

/** Nothing lost, nothing failed: every task enqueued is completed or still pending, and none failed. */
async function checkTasks(t: BenchTables, enqueued: number, what: string): Promise<void> {
  const completed = await t.count(t.completed);
  const failed = await t.count(t.completed, (q) => q.whereNotNull('failed_at'));
  const pending = await t.count(t.tasks);
  if (failed !== 0 || completed + pending !== enqueued) {
    throw new Error(`${what}: ${enqueued} enqueued, but ${completed} completed (${failed} failed) and ${pending} pending`);
  }
}

/** The three statements that took the most time, for a note: time per call and what each call touched. */
function statementsNote(db: string, p: PhaseResult): string {
  return p.statements
    .slice(0, 3)
    .map((st) => `\`${st.text.slice(0, 70)}…\` ${formatNumber(st.totalMs / 1000)} s in ${formatNumber(st.calls)} calls (${formatNumber(st.totalMs / Math.max(1, st.calls))} ms, ${formatNumber(st.perCall)} ${perCallUnit(db)} a call)`)
    .join('; ');
}

const maxOf = (xs: readonly DeadRows[], f: (s: DeadRows) => number) => Math.max(...xs.map(f));

export const longTransactionScenario: Scenario = {
  name: 'longtx',
  title: 'LONGTX-01: a transaction held open beside a steady load (soak)',
  soak: true,
  dbs: ['mysql', 'postgres'],
  method: (s) =>
    `On a private server of the same kind, started for the soak (see each measure's note), so that no transaction is held open on the shared one. ` +
    `The load: one \`process-tasks --concurrency 16\` worker (default settings otherwise), never short of work: this process enqueues no-op tasks with bulk() (${formatNumber(CHUNK)} a call) ` +
    `whenever fewer than ${formatNumber(LOW)} wait. Two phases on emptied tables, each warmed up for ${WARMUP_S} s and then measured for ${s.longtxSeconds} s: ` +
    `**clean**, and **held**, where a transaction opened after the warm-up stays open for the whole window ` +
    '(PostgreSQL: `BEGIN ISOLATION LEVEL REPEATABLE READ` and a `SELECT count(*)` of the completed table, which pins the xmin; ' +
    'MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT` under REPEATABLE READ and the same read, which stops the purge). ' +
    `Throughput = tasks finished in the window ÷ its length (finished_at of the completed rows). Dead rows are sampled every ${SAMPLE_EVERY_MS / 1000} s: ` +
    'PostgreSQL `n_dead_tup` of the task table (pg_stat_user_tables) and its size (pg_relation_size, pg_indexes_size); MariaDB the history list length ' +
    `(INNODB_METRICS trx_rseg_history_len) and the task table's .ibd size. After the window the held transaction commits and the load runs on for ${s.longtxReleaseSeconds} s. ` +
    'Each phase checks that every enqueued task is completed or still pending and none failed. One run per figure.',
  async run(ctx: Context): Promise<Measurement[]> {
    const db = ctx.target.name;
    if (db === 'sqlite') return [];
    const why = privateServerUnavailable(db);
    if (why) throw new Error(`LONGTX-01 needs a private ${ctx.target.label} server: ${why}`);
    const server = await startPrivateServer(db);
    ctx.log(`  on ${server.describe}`);
    const out: Measurement[] = [];
    let t: BenchTables | null = null;
    try {
      t = await BenchTables.create({ ...ctx.target, url: server.url }, ctx.workDir, 'longtx');
      useTables(t);
      const clean = await phase(ctx, t, server.url, false);
      await checkTasks(t, clean.enqueued, 'longtx clean');
      const held = await phase(ctx, t, server.url, true);
      await checkTasks(t, held.enqueued, 'longtx held');
      const ratio = held.rate / clean.rate;
      ctx.log(`  held ÷ clean: ${(100 * ratio).toFixed(1)} %`);
      const minutes = (p: PhaseResult) => `tasks finished per minute: ${p.perMinute.map((n) => formatNumber(n)).join(', ')}; load average ${p.load[0]} at the start, ${p.load[1]} at the end`;
      const where = `on ${server.describe}`;
      out.push(measured('longtx', 'clean', `Clean run, ${ctx.sizes.longtxSeconds} s`, db, 'tasks/s', [clean.rate], `${where}; ${minutes(clean)}; where the database's time went: ${statementsNote(db, clean)}`));
      out.push(
        measured(
          'longtx',
          'held',
          `Beside the held transaction, ${ctx.sizes.longtxSeconds} s`,
          db,
          'tasks/s',
          [held.rate],
          `${minutes(held)}; the transaction: ${held.holderState.join(' → ')}; where the database's time went: ${statementsNote(db, held)}`,
        ),
      );
      out.push(measured('longtx', 'ratio', 'Throughput beside the held transaction ÷ clean', db, 'ratio', [ratio]));
      const deadName = db === 'postgres' ? 'n_dead_tup of the task table' : 'History list length';
      const last = (xs: DeadRows[]) => xs[xs.length - 1]!;
      out.push(measured('longtx', 'clean-dead-max', `${deadName}, clean run, highest sample`, db, 'rows', [maxOf(clean.samples, (s) => s.dead)], describeSample(db, last(clean.samples))));
      out.push(
        measured('longtx', 'held-dead-max', `${deadName}, held, highest sample`, db, 'rows', [maxOf(held.samples, (s) => s.dead)], `${formatNumber(held.finished)} tasks finished meanwhile; at the end: ${describeSample(db, last(held.samples))}`),
      );
      if (held.after.length > 0) {
        out.push(
          measured('longtx', 'released-dead', `${deadName}, ${ctx.sizes.longtxReleaseSeconds} s after the commit`, db, 'rows', [last(held.after).dead], describeSample(db, last(held.after))),
        );
      }
      const size = (s: DeadRows) => s.tableBytes + (s.indexBytes ?? 0);
      const sizeName = db === 'postgres' ? 'Task table, heap and indexes' : 'Task table (.ibd)';
      out.push(measured('longtx', 'clean-size', `${sizeName}, clean run, largest`, db, 'MB', [maxOf(clean.samples, size) / 1024 ** 2]));
      out.push(measured('longtx', 'held-size', `${sizeName}, held, largest`, db, 'MB', [maxOf(held.samples, size) / 1024 ** 2]));
    } finally {
      await releaseLibrary();
      await t?.drop();
      await server.destroy();
    }
    return out;
  },
};

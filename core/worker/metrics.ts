/**
 * A worker's Prometheus metrics (prom-client), fed by the points where the worker already reports:
 * the settler's onSettled, the claim, lease recovery and the database-health guard. Off unless
 * asked for (the `metrics` worker option, `process-tasks --metrics-port`); prom-client is then
 * imported once, so a worker without metrics never loads it.
 *
 * The hot path is one counter and one histogram per attempt. prom-client hashes the label values
 * on every `inc(labels)`; the children of each (task, queue, outcome) are looked up once and kept
 * in a Map here, so an attempt costs two map reads and two plain increments.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SettledOutcome } from './settler.js';

/** Outcomes an attempt is counted under: those the settler reports, and `lost` before it. */
export type AttemptOutcome = SettledOutcome;

/** prom-client, as loaded once by `loadPromClient()`. */
type PromClient = typeof import('prom-client');

let promClient: Promise<PromClient> | null = null;

/** Imports prom-client once (a dependency, loaded only when metrics are on). */
export function loadPromClient(): Promise<PromClient> {
  promClient ??= import('prom-client');
  return promClient;
}

/** Attempt durations: tasks from a millisecond to ten minutes. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];
/** Database round trips (claims, settle writes): a tenth of a millisecond to ten seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** Rows per claim: the prefetch goes up to 500 (auto) or 10,000 (fixed). */
const BATCH_BUCKETS = [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

interface Instruments {
  attempts: Counter<'task' | 'queue' | 'outcome'>;
  duration: Histogram<'task' | 'queue'>;
  claimBatch: Histogram;
  claimSeconds: Histogram;
  settleSeconds: Histogram<'kind'>;
  recoveries: Counter<'outcome'>;
  dbErrors: Counter<'kind'>;
  info: Gauge<'worker_id' | 'version'>;
  running: Gauge<'worker_id'>;
  concurrency: Gauge<'worker_id'>;
}

/**
 * The metric, registered once per registry: several workers in one process may share a registry
 * (each adds its `worker_id` series to the gauges; the counters add up, as Prometheus would sum
 * them anyway).
 */
function instrumentsIn(prom: PromClient, registry: Registry): Instruments {
  const reg = [registry];
  function one<T>(name: string, make: () => T): T {
    return (registry.getSingleMetric(name) as T | undefined) ?? make();
  }
  return {
    attempts: one('bgtasks_attempts_total', () => new prom.Counter({ name: 'bgtasks_attempts_total', help: 'Attempts that ended, by task name, queue and outcome.', labelNames: ['task', 'queue', 'outcome'] as const, registers: reg })),
    duration: one('bgtasks_attempt_duration_seconds', () => new prom.Histogram({ name: 'bgtasks_attempt_duration_seconds', help: 'Wall-clock seconds an attempt ran, by task name and queue.', labelNames: ['task', 'queue'] as const, buckets: DURATION_BUCKETS, registers: reg })),
    claimBatch: one('bgtasks_claim_batch_size', () => new prom.Histogram({ name: 'bgtasks_claim_batch_size', help: 'Tasks returned by one claim.', buckets: BATCH_BUCKETS, registers: reg })),
    claimSeconds: one('bgtasks_claim_duration_seconds', () => new prom.Histogram({ name: 'bgtasks_claim_duration_seconds', help: 'Seconds one claim took (its queries and transaction).', buckets: LATENCY_BUCKETS, registers: reg })),
    settleSeconds: one('bgtasks_settle_duration_seconds', () => new prom.Histogram({ name: 'bgtasks_settle_duration_seconds', help: 'Seconds one settle write took: a batch of successes, or one retry, failure, snooze or release.', labelNames: ['kind'] as const, buckets: LATENCY_BUCKETS, registers: reg })),
    recoveries: one('bgtasks_lease_recoveries_total', () => new prom.Counter({ name: 'bgtasks_lease_recoveries_total', help: 'Tasks whose lease expired (their worker stopped renewing it) recovered by this worker: retried, or failed with their attempts used up.', labelNames: ['outcome'] as const, registers: reg })),
    dbErrors: one('bgtasks_database_errors_total', () => new prom.Counter({ name: 'bgtasks_database_errors_total', help: 'Failed database operations of the worker, by kind: connection, retry (deadlock or busy), missing-table, unique, other.', labelNames: ['kind'] as const, registers: reg })),
    info: one('bgtasks_worker_info', () => new prom.Gauge({ name: 'bgtasks_worker_info', help: 'Always 1: the worker id and the bgtasks version.', labelNames: ['worker_id', 'version'] as const, registers: reg })),
    running: one('bgtasks_worker_running_tasks', () => new prom.Gauge({ name: 'bgtasks_worker_running_tasks', help: 'Attempts running now in this worker.', labelNames: ['worker_id'] as const, registers: reg })),
    concurrency: one('bgtasks_worker_concurrency', () => new prom.Gauge({ name: 'bgtasks_worker_concurrency', help: 'Slots of this worker (tasks it runs at once).', labelNames: ['worker_id'] as const, registers: reg })),
  };
}

type CounterChild = { inc(value?: number): void };
type HistogramChild = { observe(value: number): void };

/** What the worker reports to; `null` in the worker when metrics are off. */
export class WorkerMetrics {
  private readonly m: Instruments;
  private readonly attemptChildren = new Map<string, CounterChild>();
  private readonly durationChildren = new Map<string, HistogramChild>();
  private readonly running: { inc(): void; dec(): void };

  private constructor(
    prom: PromClient,
    readonly registry: Registry,
    private readonly workerId: string,
    private readonly version: string | null,
    concurrency: number,
  ) {
    this.m = instrumentsIn(prom, registry);
    this.m.info.labels(workerId, version ?? 'unknown').set(1);
    this.m.concurrency.labels(workerId).set(concurrency);
    const running = this.m.running.labels(workerId);
    running.set(0);
    this.running = { inc: () => running.inc(), dec: () => running.dec() };
  }

  /** Metrics for one worker, in `registry` or in a registry of its own. */
  static async create(o: { registry?: Registry; workerId: string; version: string | null; concurrency: number }): Promise<WorkerMetrics> {
    const prom = await loadPromClient();
    return new WorkerMetrics(prom, o.registry ?? new prom.Registry(), o.workerId, o.version, o.concurrency);
  }

  attemptStarted(): void {
    this.running.inc();
  }

  attemptEnded(): void {
    this.running.dec();
  }

  /** An attempt's end, once written (or found lost). Tasks without a queue have `queue=""`. */
  attempt(name: string, queue: string | null, outcome: AttemptOutcome, durationMs: number | null): void {
    const q = queue ?? '';
    const key = `${name}\u0000${q}`;
    const ckey = `${key}\u0000${outcome}`;
    let c = this.attemptChildren.get(ckey);
    if (!c) {
      c = this.m.attempts.labels(name, q, outcome);
      this.attemptChildren.set(ckey, c);
    }
    c.inc();
    if (durationMs === null) return;
    let h = this.durationChildren.get(key);
    if (!h) {
      h = this.m.duration.labels(name, q);
      this.durationChildren.set(key, h);
    }
    h.observe(durationMs / 1000);
  }

  claimed(rows: number, seconds: number): void {
    this.m.claimBatch.observe(rows);
    this.m.claimSeconds.observe(seconds);
  }

  /** One settle write: `complete` (a batch of successes) or the decision written alone. */
  settled(kind: string, seconds: number): void {
    this.m.settleSeconds.labels(kind).observe(seconds);
  }

  leaseRecovered(outcome: 'retried' | 'failed'): void {
    this.m.recoveries.labels(outcome).inc();
  }

  databaseError(kind: string): void {
    this.m.dbErrors.labels(kind).inc();
  }

  /** The worker stopped: its gauges leave the registry (the counters stay, as counters do). */
  close(): void {
    this.m.running.remove(this.workerId);
    this.m.concurrency.remove(this.workerId);
    this.m.info.remove(this.workerId, this.version ?? 'unknown');
  }

  /** The registry's metrics in the text exposition format. */
  collect(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

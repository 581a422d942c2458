/**
 * A worker's Prometheus metrics (prom-client), fed by the points where the worker already reports:
 * the settler's onSettled, the claim, lease recovery and the database-health guard. Off unless
 * asked for (the `metrics` worker option, `process-tasks --metrics-port`); prom-client is then
 * imported once, so a worker without metrics never loads it.
 *
 * The hot path is one counter and one histogram per attempt, plus the running gauge. They are
 * local-metrics.ts instruments (plain numbers that the prom-client Registry reads when scraped):
 * the children of each (task, queue, outcome) are looked up once and kept in a Map here, so an
 * attempt costs two map reads, a few additions and a bucket search.
 */
import type { Registry } from 'prom-client';
import type { SettledOutcome } from './settler.js';
import { LocalHistogram, LocalValue, registered, type HistogramChild, type ValueChild } from './local-metrics.js';

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
/** Database round trips (claims, settle writes): half a millisecond to ten seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** Rows per claim: the prefetch goes up to 500 (auto) or 10,000 (fixed). */
const BATCH_BUCKETS = [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

interface Instruments {
  attempts: LocalValue;
  duration: LocalHistogram;
  claimBatch: LocalHistogram;
  claimSeconds: LocalHistogram;
  settleSeconds: LocalHistogram;
  recoveries: LocalValue;
  dbErrors: LocalValue;
  info: LocalValue;
  running: LocalValue;
  concurrency: LocalValue;
}

/**
 * The metrics, registered once per registry: several workers in one process may share a registry
 * (each adds its `worker_id` series to the gauges; the counters add up, as Prometheus would sum
 * them anyway).
 */
function instrumentsIn(registry: Registry): Instruments {
  const value = (name: string, help: string, type: 'counter' | 'gauge', labels: string[]) => registered(registry, name, () => new LocalValue(name, help, type, labels));
  const histogram = (name: string, help: string, labels: string[], buckets: number[]) => registered(registry, name, () => new LocalHistogram(name, help, labels, buckets));
  return {
    attempts: value('bgtasks_attempts_total', 'Attempts that ended, by task name, queue and outcome.', 'counter', ['task', 'queue', 'outcome']),
    duration: histogram('bgtasks_attempt_duration_seconds', 'Wall-clock seconds an attempt ran, by task name and queue.', ['task', 'queue'], DURATION_BUCKETS),
    claimBatch: histogram('bgtasks_claim_batch_size', 'Tasks returned by one claim.', [], BATCH_BUCKETS),
    claimSeconds: histogram('bgtasks_claim_duration_seconds', 'Seconds one claim took (its queries and transaction).', [], LATENCY_BUCKETS),
    settleSeconds: histogram('bgtasks_settle_duration_seconds', 'Seconds one settle write took: a batch of successes (complete), or one retry, fail, snooze or release.', ['kind'], LATENCY_BUCKETS),
    recoveries: value('bgtasks_lease_recoveries_total', 'Tasks whose lease expired (their worker stopped renewing it) recovered by this worker: retried, or failed with their attempts used up.', 'counter', ['outcome']),
    dbErrors: value('bgtasks_database_errors_total', 'Failed database operations of the worker, by kind: connection, retry (deadlock or busy), missing-table, unique, other.', 'counter', ['kind']),
    info: value('bgtasks_worker_info', 'Always 1: the worker id and the bgtasks version.', 'gauge', ['worker_id', 'version']),
    running: value('bgtasks_worker_running_tasks', 'Attempts running now in this worker.', 'gauge', ['worker_id']),
    concurrency: value('bgtasks_worker_concurrency', 'Slots of this worker (tasks it runs at once).', 'gauge', ['worker_id']),
  };
}

/** What the worker reports to; `null` in the worker when metrics are off. */
export class WorkerMetrics {
  private readonly m: Instruments;
  /** The attempt series of each task name and queue, looked up once each. */
  private readonly byTask = new Map<string, Map<string, { duration: HistogramChild; outcomes: Map<string, ValueChild> }>>();
  private readonly running: ValueChild;
  private readonly claimBatch: HistogramChild;
  private readonly claimSeconds: HistogramChild;

  private constructor(
    readonly registry: Registry,
    private readonly workerId: string,
    private readonly version: string | null,
    concurrency: number,
  ) {
    this.m = instrumentsIn(registry);
    this.m.info.labels(workerId, version ?? 'unknown').set(1);
    this.m.concurrency.labels(workerId).set(concurrency);
    this.running = this.m.running.labels(workerId);
    this.running.set(0);
    this.claimBatch = this.m.claimBatch.labels();
    this.claimSeconds = this.m.claimSeconds.labels();
  }

  /** Metrics for one worker, in `registry` or in a registry of its own. */
  static async create(o: { registry?: Registry; workerId: string; version: string | null; concurrency: number }): Promise<WorkerMetrics> {
    const prom = await loadPromClient();
    return new WorkerMetrics(o.registry ?? new prom.Registry(), o.workerId, o.version, o.concurrency);
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
    // Nested maps rather than a joined key: no string is built per attempt.
    let byQueue = this.byTask.get(name);
    if (!byQueue) {
      byQueue = new Map();
      this.byTask.set(name, byQueue);
    }
    let series = byQueue.get(q);
    if (!series) {
      series = { duration: this.m.duration.labels(name, q), outcomes: new Map() };
      byQueue.set(q, series);
    }
    let c = series.outcomes.get(outcome);
    if (!c) {
      c = this.m.attempts.labels(name, q, outcome);
      series.outcomes.set(outcome, c);
    }
    c.inc();
    if (durationMs !== null) series.duration.observe(durationMs / 1000);
  }

  claimed(rows: number, seconds: number): void {
    this.claimBatch.observe(rows);
    this.claimSeconds.observe(seconds);
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

/**
 * Queue-depth gauges for a `GET /metrics` endpoint (the dashboard's, or the application's own):
 * tasks by queue and status, due tasks, and the age of the oldest due one. They come from one
 * aggregate statement (store/queue-depth.ts) whose answer is kept for `cacheSeconds` (at least
 * 5, and at least ten times as long as the statement took), so however often Prometheus (or
 * several of them) scrapes, the database sees at most one statement per period. Once there is an
 * answer a scrape never waits for the statement: an answer past its period is served while the
 * next one is read in the background. The first scrape waits, and so does one after a failed
 * statement (a failure is kept as long as an answer: a database that is down is not asked at
 * every scrape). Only the oldest due age moves with the clock between statements.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Gauge, Registry } from 'prom-client';
import { currentClock, type Clock } from '../base/clock.js';
import { ConfigError } from '../errors.js';
import { queueDepth, type QueueDepth } from '../store/queue-depth.js';
import type { Store } from '../store/store.js';

export const MIN_CACHE_SECONDS = 5;

export interface QueueMetricsOptions {
  /** Seconds an answer is reused; at least 5 (the default). */
  cacheSeconds?: number;
  /** The clock for the READY/RUNNING rule, the due age and the cache; default the bgtasks clock. */
  clock?: Clock;
}

export interface QueueMetrics {
  /** The gauges in the Prometheus text format. Rejects when the (cached) query failed. */
  collect(): Promise<string>;
  /** The Content-Type of `collect()`'s text. */
  readonly contentType: string;
  /** A node:http handler: 200 with the text, or 503 with one line when the database did not answer. */
  handler(req: IncomingMessage, res: ServerResponse): void;
}

interface Answer {
  atMs: number;
  /** How long this answer is used: the cache period, or longer after a slow statement. */
  ttlMs: number;
  rows?: QueueDepth[];
  /** Set when the statement failed. */
  error?: unknown;
}

/**
 * An answer is also kept at least this many times as long as its statement took: on a backlog
 * where the statement is slow (MariaDB read a million pending rows in 3.7 s), the database spends
 * at most a tenth of its time on it however often it is scraped.
 */
const SLOW_FACTOR = 10;

interface Gauges {
  registry: Registry;
  tasks: Gauge<'queue' | 'status'>;
  due: Gauge<'queue'>;
  oldest: Gauge<'queue'>;
}

/** Queue-depth metrics over `store`. Nothing is loaded or queried until the first scrape. */
export function queueMetrics(store: Store, options: QueueMetricsOptions = {}): QueueMetrics {
  const cacheSeconds = options.cacheSeconds ?? MIN_CACHE_SECONDS;
  if (typeof cacheSeconds !== 'number' || !Number.isFinite(cacheSeconds) || cacheSeconds < MIN_CACHE_SECONDS) {
    throw new ConfigError(`Invalid cacheSeconds: ${String(cacheSeconds)} — expected a number of seconds >= ${MIN_CACHE_SECONDS} (scrapes must not load the database)`);
  }
  const cacheMs = cacheSeconds * 1000;
  const clock = () => options.clock ?? currentClock();
  let answer: Answer | null = null;
  let reading: Promise<void> | null = null;
  let gauges: Promise<Gauges> | null = null;

  function read(nowMs: number): Promise<void> {
    if (!reading) {
      const started = performance.now();
      const ttlMs = () => Math.max(cacheMs, SLOW_FACTOR * (performance.now() - started));
      reading = queueDepth(store, nowMs)
        .then(
          (rows) => void (answer = { atMs: nowMs, ttlMs: ttlMs(), rows }),
          (error: unknown) => void (answer = { atMs: nowMs, ttlMs: ttlMs(), error }),
        )
        .finally(() => (reading = null));
    }
    return reading;
  }

  async function depth(nowMs: number): Promise<QueueDepth[]> {
    const fresh = answer !== null && nowMs >= answer.atMs && nowMs - answer.atMs < answer.ttlMs;
    if (!fresh) {
      const next = read(nowMs);
      if (answer === null || answer.error !== undefined) await next;
    }
    if (answer!.error !== undefined) throw answer!.error;
    return answer!.rows!;
  }

  async function makeGauges(): Promise<Gauges> {
    const prom = await import('prom-client');
    const registry = new prom.Registry();
    const registers = [registry];
    return {
      registry,
      tasks: new prom.Gauge({ name: 'bgtasks_queue_tasks', help: 'Pending tasks by queue and status (READY includes tasks waiting for their run time or a retry).', labelNames: ['queue', 'status'] as const, registers }),
      due: new prom.Gauge({ name: 'bgtasks_queue_due_tasks', help: 'READY tasks whose run time has passed, by queue.', labelNames: ['queue'] as const, registers }),
      oldest: new prom.Gauge({ name: 'bgtasks_queue_oldest_due_age_seconds', help: 'Seconds the oldest due READY task of the queue has waited past its run time (0: none due).', labelNames: ['queue'] as const, registers }),
    };
  }

  async function collect(): Promise<string> {
    gauges ??= makeGauges();
    const g = await gauges;
    const nowMs = clock().now();
    const rows = await depth(nowMs);
    // Set from scratch: a queue that emptied out disappears instead of keeping its last value.
    g.tasks.reset();
    g.due.reset();
    g.oldest.reset();
    for (const r of rows) {
      const queue = r.queue ?? '';
      g.tasks.labels(queue, 'READY').set(r.ready);
      g.tasks.labels(queue, 'RUNNING').set(r.running);
      g.due.labels(queue).set(r.due);
      g.oldest.labels(queue).set(r.oldestDueAt === null ? 0 : Math.max(0, (nowMs - r.oldestDueAt) / 1000));
    }
    return g.registry.metrics();
  }

  const contentType = 'text/plain; version=0.0.4; charset=utf-8';
  return {
    collect,
    contentType,
    handler(_req, res) {
      collect().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
          res.end(text);
        },
        () => {
          // Not the driver's message: it may name the server; the worker and the logs say more.
          res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
          res.end('bgtasks: the database did not answer the queue-depth query; try again later\n');
        },
      );
    },
  };
}

/** The node:http handler of `queueMetrics(store, options)`: what the dashboard mounts at `GET /metrics`. */
export function queueMetricsHandler(store: Store, options: QueueMetricsOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  return queueMetrics(store, options).handler;
}

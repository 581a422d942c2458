/**
 * Prometheus metrics on every database: a worker's counters and histograms, scraped in the text
 * format and read back, match the work it did (successes, retries, failures, a recovered lease);
 * the queue-depth gauges match the pending table, and however often they are scraped, the
 * database sees at most one query per cache period (counted with knex's `query` event).
 */
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { background, schedule } from '../../core/index.js';
import { Worker } from '../../core/worker/worker.js';
import { queueMetrics, queueMetricsHandler } from '../../core/api/metrics.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { recordingLogger } from '../helpers/log.js';
import { parseExposition, sampleSum, sampleValue } from '../helpers/prometheus.js';

const failedOnce = new Set<number>();
let gate: (() => void) | null = null;

const ok = background({ name: 'metrics.ok', queue: 'mq' }, function ok(n: number) {
  return n;
});
const flaky = background({ name: 'metrics.flaky', queue: 'mq', maxAttempts: 3 }, function flaky(n: number) {
  if (!failedOnce.has(n)) {
    failedOnce.add(n);
    throw new Error(`flaky ${n} fails once`);
  }
  return n;
});
const bad = background({ name: 'metrics.bad', maxAttempts: 2 }, function bad() {
  throw new Error('always');
});
const slow = background({ name: 'metrics.slow', queue: 'slowq' }, async function slow() {
  await new Promise<void>((r) => (gate = r));
});

const T0 = Date.UTC(2032, 2, 1, 12);

contract('worker metrics', (db) => {
  const { clock, drain } = manualClockSuite(db, T0, () => failedOnce.clear());
  const names = ['metrics.ok', 'metrics.flaky', 'metrics.bad'];

  it('counts attempts by task, queue and outcome, their durations, claims and settle writes', async () => {
    const registry = new Registry();
    for (let i = 0; i < 5; i++) await ok(i);
    await flaky(1);
    await flaky(2);
    await bad();
    await drain({ names, metrics: registry });
    // Retries wait for their backoff (attempt 1: 6 s): run them.
    clock.advance(10);
    await drain({ names, metrics: registry });
    const s = parseExposition(await registry.metrics());
    const attempts = (task: string, queue: string, outcome: string) => sampleValue(s, 'bgtasks_attempts_total', { task, queue, outcome });
    expect(attempts('metrics.ok', 'mq', 'succeeded')).to.equal(5);
    expect(attempts('metrics.flaky', 'mq', 'rescheduled')).to.equal(2);
    expect(attempts('metrics.flaky', 'mq', 'succeeded')).to.equal(2);
    expect(attempts('metrics.bad', '', 'rescheduled')).to.equal(1);
    expect(attempts('metrics.bad', '', 'failed')).to.equal(1);
    expect(sampleSum(s, 'bgtasks_attempts_total')).to.equal(11);
    expect(sampleValue(s, 'bgtasks_attempt_duration_seconds_count', { task: 'metrics.ok', queue: 'mq' })).to.equal(5);
    expect(sampleValue(s, 'bgtasks_attempt_duration_seconds_count', { task: 'metrics.flaky', queue: 'mq' })).to.equal(4);
    expect(sampleValue(s, 'bgtasks_attempt_duration_seconds_bucket', { task: 'metrics.ok', queue: 'mq', le: '+Inf' })).to.equal(5);
    // Every attempt was claimed once; at least one claim per drain returned rows.
    expect(sampleValue(s, 'bgtasks_claim_batch_size_sum')).to.equal(11);
    expect(sampleValue(s, 'bgtasks_claim_duration_seconds_count')).to.equal(sampleValue(s, 'bgtasks_claim_batch_size_count'));
    expect(sampleValue(s, 'bgtasks_claim_batch_size_count')).to.be.at.least(2);
    // Successes are written in batches; each retry and failure on its own.
    expect(sampleValue(s, 'bgtasks_settle_duration_seconds_count', { kind: 'retry' })).to.equal(3);
    expect(sampleValue(s, 'bgtasks_settle_duration_seconds_count', { kind: 'fail' })).to.equal(1);
    expect(sampleValue(s, 'bgtasks_settle_duration_seconds_count', { kind: 'complete' })).to.be.within(1, 7);
    expect(sampleValue(s, 'bgtasks_lease_recoveries_total')).to.equal(undefined);
    expect(sampleSum(s, 'bgtasks_database_errors_total')).to.equal(0);
    // The drained workers stopped: their gauges are gone, the counters stay.
    expect(sampleValue(s, 'bgtasks_worker_running_tasks')).to.equal(undefined);
  });

  it('counts a recovered lease, and shows the worker and its running tasks while it runs', async () => {
    await ok(1);
    const [claimed] = await db.store.claim({ names: ['metrics.ok'], queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'gone', nowMs: T0, leaseMs: 1000, limit: 1 });
    expect(claimed).to.not.equal(undefined);
    clock.advance(5);
    await slow();
    const w = await new Worker({ clock, workerId: 'metrics-w', sleep: 0.02, names: ['metrics.ok', 'metrics.slow'], concurrency: 2, metrics: true, logger: recordingLogger() }).start(db.settings);
    try {
      const scrape = async () => parseExposition(await w.collectMetrics());
      await waitUntil(async () => sampleValue(await scrape(), 'bgtasks_worker_running_tasks', { worker_id: 'metrics-w' }) === 1 && gate !== null, 'the slow task to run');
      const s = await scrape();
      expect(sampleValue(s, 'bgtasks_worker_info', { worker_id: 'metrics-w' })).to.equal(1);
      expect(sampleValue(s, 'bgtasks_worker_concurrency', { worker_id: 'metrics-w' })).to.equal(2);
      await waitUntil(async () => sampleValue(await scrape(), 'bgtasks_attempts_total', { task: 'metrics.ok', outcome: 'succeeded' }) === 1, 'the recovered task to run');
      expect(sampleValue(await scrape(), 'bgtasks_lease_recoveries_total', { outcome: 'retried' })).to.equal(1);
      gate!();
      await waitUntil(async () => sampleValue(await scrape(), 'bgtasks_attempts_total', { task: 'metrics.slow', queue: 'slowq', outcome: 'succeeded' }) === 1, 'the slow task to end');
      expect(sampleValue(await scrape(), 'bgtasks_worker_running_tasks', { worker_id: 'metrics-w' })).to.equal(0);
      expect(w.metricsRegistry()).to.not.equal(null);
    } finally {
      gate = null;
      await w.stop(0);
    }
  });

  it('counts database errors by kind (a missing table; the loop then stops with reason fatal)', async () => {
    const registry = new Registry();
    const w = await new Worker({ clock, workerId: 'metrics-err', sleep: 0.02, names, metrics: registry, logger: recordingLogger() }).start(db.settings);
    const tasks = db.store.tables.tasks;
    const aside = `${tasks}_aside`;
    await db.store.knex.schema.renameTable(tasks, aside);
    try {
      // The claim finds no table: the error is counted, and the worker stops (reason fatal).
      const summary = await w.done;
      expect(summary.reason).to.equal('fatal');
      expect(sampleValue(parseExposition(await registry.metrics()), 'bgtasks_database_errors_total', { kind: 'missing-table' })).to.be.at.least(1);
    } finally {
      await db.store.knex.schema.renameTable(aside, tasks);
      await w.stop(0);
    }
  });

  it('a worker without the metrics option has no registry and collects nothing', async () => {
    const w = new Worker({ clock, sleep: 0.02, names, logger: recordingLogger() });
    expect(w.metricsRegistry()).to.equal(null);
    expect(await w.collectMetrics()).to.equal('');
  });

  it('refuses a metrics option that is not a boolean or a registry, naming it', () => {
    expect(() => new Worker({ metrics: 'yes' as unknown as boolean })).to.throw(/Invalid metrics: "yes" — expected true, false or a prom-client Registry/);
  });

  it('queue-depth gauges: tasks by queue and status, due tasks and the oldest due age, from at most one query per 5 s', async () => {
    for (let i = 0; i < 3; i++) await ok(i);
    await flaky(1, schedule(3600));
    await bad();
    await db.store.claim({ names: ['metrics.ok'], queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w', nowMs: T0, leaseMs: 60_000, limit: 1 });
    let queries = 0;
    const count = () => queries++;
    db.store.knex.on('query', count);
    try {
      const m = queueMetrics(db.store, { clock });
      clock.advance(2);
      const first = parseExposition(await m.collect());
      expect(queries).to.equal(1);
      expect(sampleValue(first, 'bgtasks_queue_tasks', { queue: 'mq', status: 'RUNNING' })).to.equal(1);
      expect(sampleValue(first, 'bgtasks_queue_tasks', { queue: 'mq', status: 'READY' })).to.equal(3);
      expect(sampleValue(first, 'bgtasks_queue_due_tasks', { queue: 'mq' })).to.equal(2);
      expect(sampleValue(first, 'bgtasks_queue_tasks', { queue: '', status: 'READY' })).to.equal(1);
      expect(sampleValue(first, 'bgtasks_queue_oldest_due_age_seconds', { queue: '' })).to.equal(2);
      // Many scrapes, some at once, within the period: no further query; the age follows the clock.
      await Promise.all([m.collect(), m.collect(), m.collect()]);
      clock.advance(4.9);
      const later = parseExposition(await m.collect());
      expect(queries).to.equal(1);
      expect(sampleValue(later, 'bgtasks_queue_oldest_due_age_seconds', { queue: '' })).to.be.closeTo(6.9, 1e-9);
      // Past the period: scrapes are answered from the last answer at once while one statement
      // reads the next in the background.
      clock.advance(0.1);
      await bad();
      const before = queries;
      const stale = await Promise.all([m.collect(), m.collect()]);
      for (const text of stale) expect(sampleValue(parseExposition(text), 'bgtasks_queue_tasks', { queue: '', status: 'READY' })).to.equal(1);
      await waitUntil(async () => sampleValue(parseExposition(await m.collect()), 'bgtasks_queue_tasks', { queue: '', status: 'READY' }) === 2, 'the next answer');
      expect(queries - before).to.equal(1);
      // The node:http handler serves the same text.
      const server = http.createServer(queueMetricsHandler(db.store, { clock }));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
        expect(res.status).to.equal(200);
        expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
        expect(sampleValue(parseExposition(await res.text()), 'bgtasks_queue_tasks', { queue: 'mq', status: 'RUNNING' })).to.equal(1);
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    } finally {
      db.store.knex.off('query', count);
    }
  });

  it('refuses a cache period under 5 s', () => {
    expect(() => queueMetrics(db.store, { cacheSeconds: 1 })).to.throw(/Invalid cacheSeconds: 1 — expected a number of seconds >= 5/);
  });
});

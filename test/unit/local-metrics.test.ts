/**
 * The worker's cheap instruments (core/worker/local-metrics.ts) must write exactly what
 * prom-client's own counter, gauge and histogram write for the same updates: the same text,
 * line for line, through the same Registry.
 */
import { expect } from 'chai';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LocalHistogram, LocalValue, registered } from '../../core/worker/local-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];
const SAMPLES = [0, 0.0005, 0.001, 0.002, 0.05, 0.1, 0.7, 3, 12, 99];

describe('local metrics', () => {
  it('write the same text as prom-client for the same updates', async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const c = registered(mine, 'x_total', () => new LocalValue('x_total', 'A counter.', 'counter', ['task', 'outcome']));
    const g = registered(mine, 'x_running', () => new LocalValue('x_running', 'A gauge.', 'gauge', ['worker_id']));
    const h = registered(mine, 'x_seconds', () => new LocalHistogram('x_seconds', 'A histogram.', ['task'], BUCKETS));
    const pc = new Counter({ name: 'x_total', help: 'A counter.', labelNames: ['task', 'outcome'], registers: [theirs] });
    const pg = new Gauge({ name: 'x_running', help: 'A gauge.', labelNames: ['worker_id'], registers: [theirs] });
    const ph = new Histogram({ name: 'x_seconds', help: 'A histogram.', labelNames: ['task'], buckets: BUCKETS, registers: [theirs] });
    for (const [task, outcome, n] of [['a', 'ok', 3], ['a', 'failed', 1], ['b "quoted"\\', 'ok', 2]] as const) {
      for (let i = 0; i < n; i++) {
        c.labels(task, outcome).inc();
        pc.labels(task, outcome).inc();
      }
    }
    g.labels('w1').inc();
    g.labels('w1').inc();
    g.labels('w1').dec();
    pg.labels('w1').inc();
    pg.labels('w1').inc();
    pg.labels('w1').dec();
    for (const v of SAMPLES) {
      h.labels('a').observe(v);
      ph.labels('a').observe(v);
    }
    expect(await mine.metrics()).to.equal(await theirs.metrics());
    // The same metric is found again in its registry rather than registered twice.
    expect(registered(mine, 'x_total', () => new LocalValue('x_total', 'other', 'counter', []))).to.equal(c);
  });

  it('remove a gauge series', async () => {
    const r = new Registry();
    const g = registered(r, 'y', () => new LocalValue('y', 'A gauge.', 'gauge', ['worker_id']));
    g.labels('w1').set(4);
    g.labels('w2').set(5);
    g.remove('w1');
    expect(await r.metrics()).to.equal('# HELP y A gauge.\n# TYPE y gauge\ny{worker_id="w2"} 5\n');
  });
});

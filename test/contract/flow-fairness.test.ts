/**
 * Fairness between keys, with a real worker, on every database (issue 17, "Correctness"): key A
 * has 10,000 due tasks enqueued first (in bulk), key B ten enqueued after; one worker of
 * concurrency 4, at its default prefetch, starts all of B's tasks within the first 100 starts after
 * B was enqueued. And a limited slot held by a worker that died is free again once its lease is
 * recovered: nothing stays counted.
 */
import { expect } from 'chai';
import { background, schedule, setQueueLimits } from '../../core/index.js';
import { ManualClock, resetClock, setClock } from '../../core/base/clock.js';
import { Worker } from '../../core/worker/worker.js';
import { emptyFlowPlan } from '../../core/store/claim.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { countRows } from '../helpers/stored-rows.js';

const starts: string[] = [];
let running = 0;
let maxRunning = 0;

// A key may fill every slot and the whole prefetch of the worker: only turn-taking lets B in.
const fair = background({ name: 'fair.task', concurrencyKey: (key: string) => key, concurrencyLimit: 100_000 }, function fairTask(key: string) {
  starts.push(key);
});

const slot = background({ name: 'fair.slot', queue: 'limited' }, async function fairSlot(tag: string) {
  starts.push(tag);
  if (tag === 'other') return;
  running++;
  maxRunning = Math.max(maxRunning, running);
  await new Promise((r) => setTimeout(r, 30));
  running--;
});

const woke: string[] = [];
const plainNow = background({ name: 'fair.plainNow' }, function plainNow() {
  woke.push('plain');
});
const keyedNow = background({ name: 'fair.keyedNow', concurrencyKey: (k: string) => k }, function keyedNow(k: string) {
  woke.push(k);
});

const T0 = Date.UTC(2031, 8, 9, 9);

contract('fairness between keys, and slots of dead workers', (db) => {
  const clock = new ManualClock(T0);
  beforeEach(async function () {
    this.timeout(60_000);
    await db.reset();
    clock.set(T0);
    setClock(clock);
    starts.length = 0;
    running = 0;
    maxRunning = 0;
  });
  afterEach(() => resetClock());

  it('with 10,000 tasks of key A waiting, all ten of key B start within the first 100 starts after B is enqueued', async function () {
    this.timeout(60_000);
    await fair.bulk(Array.from({ length: 10_000 }, () => ['A'] as [string]));
    const w = await new Worker({ clock, sleep: 0.05, concurrency: 4, logger: recordingLogger() }).start(db.settings);
    try {
      // The worker is well into A's backlog (its prefetch has measured A's tasks) when B comes.
      await waitUntil(() => starts.length >= 200, '200 starts of key A', 30_000);
      const mark = starts.length;
      await fair.bulk(Array.from({ length: 10 }, () => ['B'] as [string]));
      await waitUntil(() => starts.filter((k) => k === 'B').length === 10, 'the ten tasks of key B to start', 30_000);
      const after = starts.slice(mark);
      const lastB = after.lastIndexOf('B');
      expect(lastB, `B's last start was start ${lastB + 1} after B was enqueued`).to.be.lessThan(100);
    } finally {
      await w.stop(0);
    }
  });

  it('a keyed task enqueued right after a claim that saw none runs at once, not a poll later', async function () {
    woke.length = 0;
    // A worker that polls only every 10 s: only its wake-up on a new task (this process's enqueue
    // event, or PostgreSQL's NOTIFY) gets tasks to it sooner.
    const w = await new Worker({ clock, sleep: 10, concurrency: 2, logger: recordingLogger() }).start(db.settings);
    try {
      await plainNow();
      await waitUntil(() => woke.includes('plain'), 'the plain task to run', 3000);
      await keyedNow('k1');
      await waitUntil(() => woke.includes('k1'), 'the keyed task to run', 3000);
    } finally {
      await w.stop(0);
    }
  });

  it('a slot held by a worker that died is free once its lease expires, its task is recovered, and the limit is used to the full after', async function () {
    this.timeout(30_000);
    await setQueueLimits('limited', { concurrency: 2 });
    for (let i = 0; i < 2; i++) await slot(`dead${i}`);
    // A worker claims both slots and dies: its leases run 10 s and are never renewed.
    const plan = emptyFlowPlan();
    plan.queueLimits = new Map([['limited', { paused: false, concurrency: 2, rateLimit: null }]]);
    const held = await db.store.claim({ names: ['fair.slot'], queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'dead-worker', nowMs: clock.now(), leaseMs: 10_000, limit: 5, flow: plan });
    expect(held).to.have.length(2);
    for (let i = 0; i < 6; i++) await slot(`live${i}`);
    const w = await new Worker({ clock, sleep: 0.02, concurrency: 4, lockTimeout: 10, logger: recordingLogger() }).start(db.settings);
    try {
      // A task of another queue runs: the claim that took it also looked at the limited queue.
      await slot('other', schedule(0, { queue: 'other' }));
      await waitUntil(() => starts.includes('other'), 'the worker to claim');
      expect(starts).to.deep.equal(['other']);
      clock.advance(10.001);
      // The two slots are free; lease recovery makes the dead worker's tasks claimable again.
      await waitUntil(async () => (await countRows(db, db.store.tables.completed)) === 9, 'all nine tasks to finish', 20_000);
      expect(starts.filter((t) => t.startsWith('dead'))).to.have.length(2);
      expect(maxRunning).to.equal(2);
      // Nothing stays counted: two more run at once.
      maxRunning = 0;
      for (let i = 0; i < 4; i++) await slot(`again${i}`);
      await waitUntil(async () => (await countRows(db, db.store.tables.completed)) === 13, 'four more tasks to finish');
      expect(maxRunning).to.equal(2);
    } finally {
      await w.stop(0);
    }
  });
});

/**
 * Reliability (issue 4) in one process, on every database: leases and heartbeats, recovery of a
 * dead worker's task, fencing, run-time limits, cancellation, graceful stop, prefetch and
 * concurrency. Whole-process faults (kill -9, SIGSTOP, network cuts) are in test/cli/faults.
 */
import { expect } from 'chai';
import { background, cancel, getResult, schedule, Repeat, TaskNotFoundError, ValidationError } from '../../core/index.js';
import { ManualClock } from '../../core/base/clock.js';
import { setClock, resetClock } from '../../core/base/clock.js';
import { Worker, type WorkerOptions } from '../../core/worker/worker.js';
import { ALL_LEASES_EVERY_MS, LEASE_READ_MARGIN_MS, Maintenance } from '../../core/worker/maintenance.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import type { ClaimRequest } from '../../core/store/store.js';
import knexFactory from 'knex';

/** A gate a task waits on, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

let current = gate();
let running = 0;
let maxRunning = 0;
let lateFinished = false;
let startedTags: string[] = [];

const gated = background({ name: 'rel.gated', context: true }, async function gated(ctx, tag: string) {
  running++;
  startedTags.push(tag);
  maxRunning = Math.max(maxRunning, running);
  try {
    await Promise.race([
      current.opened,
      new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
    ]);
    return `${tag}@${ctx.attempt}`;
  } finally {
    running--;
  }
});
const gatedThenFails = background({ name: 'rel.gatedFails' }, async function gatedFails() {
  await current.opened;
  throw new Error('failed after the gate');
});
const cooperative = background({ name: 'rel.cooperative', context: true, maxRunTime: 0.2 }, async function cooperative(ctx) {
  await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
});
const stubborn = background({ name: 'rel.stubborn', maxRunTime: 0.2 }, async function stubborn() {
  await new Promise((r) => setTimeout(r, 800));
  lateFinished = true;
  return 'late';
});
const quick = background({ name: 'rel.quick' }, function quick(n: number) {
  return n;
});

const T0 = Date.UTC(2030, 5, 1, 8);

contract('reliability in one process', (db) => {
  const clock = new ManualClock(T0);
  const claimReq = (workerId: string, extra: Partial<ClaimRequest> = {}): ClaimRequest => ({
    names: ['rel.gated', 'rel.quick', 'rel.gatedFails'],
    queues: null,
    excludeQueues: null,
    ordering: 'DESC',
    workerId,
    nowMs: clock.now(),
    leaseMs: 5_000,
    limit: 1,
    ...extra,
  });
  const start = (extra: WorkerOptions = {}) =>
    new Worker({ clock, sleep: 0.02, lockTimeout: 5, heartbeatInterval: 0.05, logger: recordingLogger(), ...extra }).start(db.settings);
  const maintenance = () =>
    new Maintenance({ store: db.store, clock, log: recordingLogger(), workerId: 'maint', names: [], maxAttemptsFor: (t) => t.maxAttempts ?? 25, everyMs: 1000 });

  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
    current = gate();
    running = 0;
    maxRunning = 0;
    lateFinished = false;
    startedTags = [];
  });
  afterEach(() => {
    current.open();
    resetClock();
  });

  it("recovers a dead worker's task after its lease expires, keeping the lost attempt and naming the worker", async () => {
    const ref = await quick(1);
    const [claimed] = await db.store.claim(claimReq('dead-host:123:abcd'));
    expect(claimed!.attempts).to.equal(1);
    clock.advance(5.001);
    const summary = await Worker.drain({ clock, sleep: 0.01, lockTimeout: 5, heartbeatInterval: 1, logger: recordingLogger() }, db.settings);
    expect(summary.succeeded).to.equal(1);
    const r = await getResult(ref.id);
    expect(r.status).to.equal('SUCCESSFUL');
    expect(r.attempts).to.equal(2);
    expect(r.errors).to.have.length(1);
    expect(r.errors[0]!.exceptionClass).to.equal('WorkerLostError');
    expect(r.errors[0]!.message).to.match(/worker dead-host:123:abcd stopped renewing its lease/);
  });

  it('reads the leases that expired since its last complete pass, and all of them every ALL_LEASES_EVERY_MS', async () => {
    let real = 1_000_000;
    const m = new Maintenance({ store: db.store, clock, log: recordingLogger(), workerId: 'maint', names: [], maxAttemptsFor: () => 25, everyMs: 1000, realTime: () => real });
    await quick(1);
    await quick(2);
    await quick(3);
    const [old] = await db.store.claim(claimReq('old-worker'));
    expect(await m.recoverExpiredLeases()).to.equal(0); // a complete pass at T0: nothing expired
    // A lease that ran out long before that pass, written after it (the row of another program,
    // or a write that stalled): beyond the margin, so the next passes do not read it ...
    await db.store.knex(db.store.tables.tasks).where('id', old!.id).update({ locked_until: T0 - LEASE_READ_MARGIN_MS - 1 });
    // ... while a lease that runs out after the last pass is read and recovered.
    const [recent] = await db.store.claim(claimReq('recent-worker'));
    clock.advance(5.001);
    expect(await m.recoverExpiredLeases()).to.equal(1);
    expect(await db.store.findPending(recent!.id)).to.deep.include({ lockedBy: null });
    expect(await db.store.findPending(old!.id)).to.deep.include({ lockedBy: 'old-worker' });
    real += ALL_LEASES_EVERY_MS - 1;
    expect(await m.recoverExpiredLeases()).to.equal(0);
    // Every ALL_LEASES_EVERY_MS (real time) a pass reads them all.
    real += 1;
    expect(await m.recoverExpiredLeases()).to.equal(1);
    expect(await db.store.findPending(old!.id)).to.deep.include({ lockedBy: null });
    // A fresh recovering worker reads them all at its first pass.
    const [third] = await db.store.claim(claimReq('third-worker'));
    await db.store.knex(db.store.tables.tasks).where('id', third!.id).update({ locked_until: T0 - 60_000 });
    expect(await maintenance().recoverExpiredLeases()).to.equal(1);
  });

  it('does not recover a lease that has not expired yet', async () => {
    await quick(1);
    await db.store.claim(claimReq('alive'));
    clock.advance(4.9);
    expect(await maintenance().recoverExpiredLeases()).to.equal(0);
  });

  it('fails a task that kills its worker every time once its attempts are used up', async () => {
    const ref = await quick(2, schedule(0, { maxAttempts: 2 }));
    for (let i = 0; i < 2; i++) {
      await db.store.claim(claimReq(`doomed-${i}`));
      clock.advance(6);
      await maintenance().recoverExpiredLeases();
    }
    const r = await getResult(ref.id);
    expect(r.status).to.equal('FAILED');
    expect(r.attempts).to.equal(2);
    expect(r.errors.map((e) => e.exceptionClass)).to.deep.equal(['WorkerLostError', 'WorkerLostError']);
  });

  it('keeps a long task leased while its worker is alive (heartbeats renew the lease)', async () => {
    const ref = await gated('long');
    const w = await start();
    try {
      await waitUntil(() => running === 1, 'the task to start');
      for (let i = 0; i < 8; i++) {
        clock.advance(1);
        const target = clock.now() + 4_500;
        await waitUntil(async () => ((await db.store.findPending(ref.id))!.lockedUntil ?? 0) >= target, 'a heartbeat');
        expect(await maintenance().recoverExpiredLeases()).to.equal(0);
      }
      current.open();
      await waitUntil(async () => (await getResult(ref.id)).isFinished, 'the task to finish');
      const r = await getResult(ref.id);
      expect(r.returnValue).to.equal('long@1');
      expect(r.attempts).to.equal(1);
    } finally {
      await w.stop(0);
    }
  });

  it('fences a worker whose lease was taken over: its late writes change nothing', async () => {
    const ref = await quick(3);
    const [old] = await db.store.claim(claimReq('paused-worker'));
    clock.advance(6);
    await maintenance().recoverExpiredLeases();
    const [fresh] = await db.store.claim(claimReq('new-worker'));
    expect(fresh!.id).to.equal(old!.id);
    const late = await db.store.completeMany([{ task: old!, finishedAt: clock.now(), returnValue: '"stale"', successorAt: null }], clock.now());
    expect(late.lost).to.have.length(1);
    expect(await db.store.retry(old!, clock.now(), { class: 'Error', message: 'x', stack: 'x', attempt: 1, at: clock.now(), workerId: 'paused-worker' })).to.equal('lost');
    expect(await db.store.release([old!])).to.equal(0);
    const ok = await db.store.completeMany([{ task: fresh!, finishedAt: clock.now(), returnValue: '"fresh"', successorAt: null }], clock.now());
    expect(ok.done).to.have.length(1);
    const r = await getResult(ref.id);
    expect(r.returnValue).to.equal('fresh');
    expect(r.workerId).to.equal('new-worker');
  });

  it('aborts a task at its maxRunTime and records a TaskTimeoutError with a retry', async () => {
    const ref = await cooperative();
    const summary = await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, db.settings);
    expect(summary.rescheduled).to.equal(1);
    const r = await getResult(ref.id);
    expect(r.status).to.equal('READY');
    expect(r.attempts).to.equal(1);
    expect(r.errors[0]!.exceptionClass).to.equal('TaskTimeoutError');
    expect(r.runAt.getTime()).to.equal(clock.now() + 6_000);
  });

  it('abandons a task that ignores its signal and discards its late result', async () => {
    const ref = await stubborn();
    await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, db.settings);
    await waitUntil(() => lateFinished, 'the abandoned task to end');
    await new Promise((r) => setImmediate(r));
    const r = await getResult(ref.id);
    expect(r.status).to.equal('READY');
    expect(r.errors.map((e) => e.exceptionClass)).to.deep.equal(['TaskTimeoutError']);
    expect(await db.store.findCompleted(ref.id)).to.equal(null);
  });

  it('cancels a READY task: FAILED with a CancelledError, and a repeat chain ends', async () => {
    const ref = await quick(4, schedule(60, { repeat: Repeat.HOURLY }));
    expect(await cancel(ref)).to.deep.equal({ id: ref.id, status: 'FAILED' });
    const r = await getResult(ref.id);
    expect(r.status).to.equal('FAILED');
    expect(r.errors[0]!.exceptionClass).to.equal('CancelledError');
    const [{ n }] = (await db.store.knex(db.store.tables.tasks).count({ n: '*' })) as Array<{ n: unknown }>;
    expect(Number(n)).to.equal(0);
  });

  it('cancels a task whose worker lost its lease at once (it counts as READY): FAILED, and that worker cannot settle it', async () => {
    const ref = await quick(6);
    const [claimed] = await db.store.claim(claimReq('ghost'));
    expect(claimed!.id).to.equal(ref.id);
    clock.advance(5.001);
    expect((await getResult(ref.id)).status).to.equal('READY');
    expect(await cancel(ref.id)).to.deep.equal({ id: ref.id, status: 'FAILED' });
    const r = await getResult(ref.id);
    expect(r.status).to.equal('FAILED');
    expect(r.errors.at(-1)!.exceptionClass).to.equal('CancelledError');
    expect(r.errors.at(-1)!.message).to.match(/ghost lost its lease/);
    expect(await db.store.findPending(ref.id)).to.equal(null);
    const late = await db.store.completeMany([{ task: claimed!, finishedAt: clock.now(), returnValue: '6', successorAt: null }], clock.now());
    expect(late.lost.map((c) => c.task.id)).to.deep.equal([ref.id]);
    expect((await getResult(ref.id)).status).to.equal('FAILED');
  });

  it('refuses to cancel a finished, unknown or malformed id', async () => {
    const ref = await quick(5);
    await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, db.settings);
    await expectError(() => cancel(ref.id), ValidationError, /already finished \(SUCCESSFUL\)/);
    await expectError(() => cancel('999999'), TaskNotFoundError, /No task with id 999999/);
    await expectError(() => cancel('abc'), TaskNotFoundError, /Invalid task id "abc"/);
  });

  it('cancels a RUNNING task at its worker’s next heartbeat: signal aborted, recorded FAILED', async () => {
    const ref = await gated('cancel-me');
    const w = await start();
    try {
      await waitUntil(() => running === 1, 'the task to start');
      expect(await cancel(ref.id)).to.deep.equal({ id: ref.id, status: 'RUNNING' });
      await waitUntil(async () => (await getResult(ref.id)).isFinished, 'the cancelled task to be recorded');
      const r = await getResult(ref.id);
      expect(r.status).to.equal('FAILED');
      expect(r.errors.at(-1)!.exceptionClass).to.equal('CancelledError');
    } finally {
      await w.stop(0);
    }
  });

  it('does not let a retry swallow a cancel request that arrived while the task ran', async () => {
    const ref = await gatedThenFails();
    // Heartbeats too rare to see the request: the failing attempt's retry must notice it.
    const w = await start({ heartbeatInterval: 4 });
    try {
      await waitUntil(async () => (await getResult(ref.id)).status === 'RUNNING', 'the task to start');
      expect((await cancel(ref.id)).status).to.equal('RUNNING');
      current.open();
      await waitUntil(async () => (await getResult(ref.id)).isFinished, 'the task to be recorded');
      const r = await getResult(ref.id);
      expect(r.status).to.equal('FAILED');
      expect(r.errors.at(-1)!.exceptionClass).to.equal('CancelledError');
    } finally {
      await w.stop(0);
    }
  });

  it('on stop, gives running tasks the grace, then releases them with the attempt given back', async () => {
    const ref = await gated('stopped');
    const w = await start();
    await waitUntil(() => running === 1, 'the task to start');
    const summary = await w.stop(0.1);
    expect(summary.released).to.equal(1);
    const r = await getResult(ref.id);
    expect(r.status).to.equal('READY');
    expect(r.attempts).to.equal(0);
    const row = (await db.store.findPending(ref.id))!;
    expect([row.lockedBy, row.claimToken, row.lockedUntil]).to.deep.equal([null, null, null]);
  });

  it('lets a running task finish within the grace when it can', async () => {
    const ref = await gated('finishes');
    const w = await start();
    await waitUntil(() => running === 1, 'the task to start');
    const stopping = w.stop(10);
    current.open();
    const summary = await stopping;
    expect(summary.succeeded).to.equal(1);
    expect((await getResult(ref.id)).status).to.equal('SUCCESSFUL');
  });

  it('claims up to free slots plus prefetch, keeps their leases, and releases the prefetched on stop', async () => {
    const refs = [];
    for (let i = 0; i < 5; i++) refs.push(await gated(`p${i}`));
    const w = await start({ concurrency: 1, prefetch: 2 });
    await waitUntil(() => running === 1, 'the first task to start');
    await waitUntil(async () => {
      const [{ n }] = (await db.store.knex(db.store.tables.tasks).whereNotNull('locked_by').count({ n: '*' })) as Array<{ n: unknown }>;
      return Number(n) === 3;
    }, 'three claimed tasks');
    const summary = await w.stop(0.05);
    expect(summary.released).to.equal(3);
    const rows = (await db.store.knex(db.store.tables.tasks).select('attempts', 'locked_by')) as Array<{ attempts: unknown; locked_by: unknown }>;
    expect(rows).to.have.length(5);
    for (const row of rows) expect([Number(row.attempts), row.locked_by]).to.deep.equal([0, null]);
  });

  it('runs up to --concurrency tasks at once in one process', async () => {
    for (let i = 0; i < 8; i++) await gated(`c${i}`);
    const w = await start({ concurrency: 4 });
    try {
      await waitUntil(() => running === 4, 'four running tasks');
      expect(maxRunning).to.equal(4);
      current.open();
      await waitUntil(async () => (await db.store.knex(db.store.tables.completed).count({ n: '*' }).then((x) => Number((x as Array<{ n: unknown }>)[0]!.n))) === 8, 'eight completed tasks');
      expect(maxRunning).to.equal(4);
    } finally {
      await w.stop(0);
    }
  });

  it('wakes an idle worker at once when this process enqueues (no waiting for the next poll)', async () => {
    const w = await start({ sleep: 60 });
    try {
      const ref = await quick(7);
      await waitUntil(async () => (await getResult(ref.id)).isFinished, 'the task to run long before the 60 s poll', 5_000);
    } finally {
      await w.stop(0);
    }
  });

  if (db.name === 'postgres') {
    it('wakes an idle worker through LISTEN/NOTIFY when another connection inserts a task', async () => {
      const w = await start({ sleep: 60 });
      const other = knexFactory({ client: 'pg', connection: { connectionString: db.url } });
      try {
        const row = { name: 'rel.quick', args: '[8]', hash: 'h'.repeat(40), run_at: clock.now(), scheduled_at: clock.now(), enqueued_at: clock.now() };
        const [{ id }] = (await other(db.store.tables.tasks).insert(row).returning('id')) as Array<{ id: string }>;
        await waitUntil(async () => (await getResult(String(id))).isFinished, 'the task to run long before the 60 s poll', 5_000);
      } finally {
        await other.destroy();
        await w.stop(0);
      }
    });
  }

  it('discards the result of a task whose lease was lost while it ran, and logs it', async () => {
    const ref = await gated('stolen');
    const log = recordingLogger();
    const w = await start({ logger: log });
    try {
      await waitUntil(() => running === 1, 'the task to start');
      await db.store.knex(db.store.tables.tasks).where('id', ref.id).update({ claim_token: 'someone-else:1', locked_by: 'someone-else' });
      await waitUntil(() => running === 0, 'the task to be aborted by the lost lease');
      expect(log.find('warn', /lease lost/)).to.have.length(1);
      const row = (await db.store.findPending(ref.id))!;
      expect(row.lockedBy).to.equal('someone-else');
      expect(await db.store.findCompleted(ref.id)).to.equal(null);
    } finally {
      await w.stop(0);
    }
  });

  it('drops a prefetched task whose lease was lost before it started, never runs it, and logs it', async () => {
    const first = await gated('runs');
    const second = await gated('prefetched');
    const log = recordingLogger();
    const w = await start({ logger: log, concurrency: 1, prefetch: 1 });
    try {
      await waitUntil(() => running === 1, 'the first task to start');
      await waitUntil(async () => (await db.store.findPending(second.id))?.lockedBy === w.id, 'the second task to be prefetched');
      expect(running).to.equal(1);
      await db.store.knex(db.store.tables.tasks).where('id', second.id).update({ claim_token: 'someone-else:1', locked_by: 'someone-else' });
      await waitUntil(() => log.find('warn', /lease lost before the task started/).length === 1, 'the heartbeat to find the lease lost');
      current.open();
      await waitUntil(async () => (await db.store.findCompleted(first.id)) !== null, 'the first task to complete');
      // Given time to start it, the worker would have by now: its slot is free and it polls every 20 ms.
      await w.stop(1);
      expect(startedTags).to.deep.equal(['runs']);
      const row = (await db.store.findPending(second.id))!;
      expect([row.lockedBy, row.claimToken]).to.deep.equal(['someone-else', 'someone-else:1']);
      expect(await db.store.findCompleted(second.id)).to.equal(null);
      expect(log.find('warn', /lease lost/).map((l) => l.fields?.id)).to.deep.equal([second.id]);
    } finally {
      await w.stop(0);
    }
  });
});

async function expectError(fn: () => Promise<unknown>, cls: new (...a: any[]) => Error, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    expect(err).to.be.instanceOf(cls);
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected ${cls.name}`);
}

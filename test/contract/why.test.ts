/**
 * `explain(id)` on every database: one test per reason code of docs/flow-control.md, each in the
 * situation that causes it, checking the code, its details (holders' ids, times) and whether the
 * task counts as runnable. Workers are registry rows written as a worker writes them.
 */
import { expect } from 'chai';
import { background, cancel, configure, explain, pauseQueue, schedule, setQueueLimits, TaskNotFoundError, type WhyAnswer } from '../../core/index.js';
import { emptyFlowPlan, type FlowPlan } from '../../core/store/claim.js';
import { beatAlive, registerWorker, type WorkerRecord } from '../../core/store/workers.js';
import type { TaskLimits } from '../../core/policy/flow.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const plain = background({ name: 'why.plain', queue: 'work' }, function plain(n: number) {
  return n;
});
const keyed = background({ name: 'why.keyed', queue: 'work', concurrencyKey: (user: string) => `user:${user}` }, function keyed(user: string) {
  return user;
});
const NAMES = ['why.plain', 'why.keyed'];

const T0 = Date.UTC(2031, 10, 11, 11);
const iso = (ms: number) => new Date(ms).toISOString();

contract('why (explain)', (db) => {
  const { clock } = manualClockSuite(db, T0);

  /** A registry row as a live worker writes it; `o` overrides. */
  const worker = (id: string, o: Partial<Omit<WorkerRecord, 'stoppedAt'>> = {}) =>
    registerWorker(db.store, {
      id,
      host: 'test-host',
      pid: 1,
      version: '0.0.0',
      queues: null,
      excludeQueues: null,
      names: NAMES,
      limits: {},
      concurrency: 4,
      startedAt: clock.now(),
      heartbeatAt: clock.now(),
      heartbeatMs: 10_000,
      runUntil: null,
      ...o,
    });

  const claimAs = async (workerId: string, o: { plan?: FlowPlan; leaseMs?: number; limit?: number } = {}) =>
    db.store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId, nowMs: clock.now(), leaseMs: o.leaseMs ?? 60_000, limit: o.limit ?? 1, flow: o.plan ?? emptyFlowPlan() });

  const codes = (a: WhyAnswer) => a.reasons.map((r) => r.code);
  const reason = (a: WhyAnswer, code: string) => a.reasons.find((r) => r.code === code)!;

  beforeEach(() => worker('w1'));

  it('nothing holds a due task back when a live worker runs it: runnable, no reason', async () => {
    const ref = await plain(1);
    const a = await explain(ref);
    expect(a).to.deep.equal({ id: ref.id, name: 'why.plain', status: 'READY', runnable: true, reasons: [] });
    expect((await explain(Number(ref.id))).runnable).to.equal(true);
  });

  it('running: on worker W since T, lease until U, the worker\'s last heartbeat', async () => {
    const ref = await plain(1);
    await claimAs('w1');
    clock.advance(5);
    const a = await explain(ref.id);
    expect([a.status, a.runnable, codes(a)]).to.deep.equal(['RUNNING', true, ['running']]);
    expect(reason(a, 'running').details).to.deep.equal({ workerId: 'w1', startedAt: iso(T0), leaseUntil: iso(T0 + 60_000), workerHeartbeatAt: iso(T0), workerState: 'alive' });
  });

  it('running on a worker that looks lost: says when the task becomes recoverable', async () => {
    const ref = await plain(1);
    await claimAs('w1');
    clock.advance(45);
    const r = reason(await explain(ref.id), 'running');
    expect(r.details.workerState).to.equal('lost');
    expect(r.message).to.contain(`recoverable from ${iso(T0 + 60_000)}`);
  });

  it('running on a worker whose event loop is blocked (heartbeat stale, liveness beat fresh): says the process lives', async () => {
    const ref = await plain(1);
    await claimAs('w1');
    clock.advance(45);
    await beatAlive(db.store, 'w1', clock.now() - 1000, 12_000);
    const r = reason(await explain(ref.id), 'running');
    expect(r.details.workerState).to.equal('blocked');
    expect(r.message).to.contain(`its liveness beat landed at ${iso(clock.now() - 1000)}, so its process lives`);
    // Once the beat too is older than the worker's livenessTimeout, it is lost.
    clock.advance(12);
    expect(reason(await explain(ref.id), 'running').details.workerState).to.equal('lost');
  });

  it('cancel-requested: a RUNNING task with a cancel request', async () => {
    const ref = await plain(1);
    await claimAs('w1');
    expect((await cancel(ref.id)).status).to.equal('RUNNING');
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([true, ['running', 'cancel-requested']]);
  });

  it('finished: SUCCESSFUL or FAILED at T, never runnable', async () => {
    const ok = await plain(1);
    const [t] = await claimAs('w1');
    clock.advance(1);
    await db.store.completeMany([{ task: t!, finishedAt: clock.now(), returnValue: '1', successorAt: null }], clock.now());
    const a = await explain(ok.id);
    expect([a.status, a.runnable, codes(a)]).to.deep.equal(['SUCCESSFUL', false, ['finished']]);
    expect(reason(a, 'finished').details).to.deep.equal({ finishedAt: iso(T0 + 1000) });
    const gone = await plain(2);
    await cancel(gone.id);
    const b = await explain(gone.id);
    expect([b.status, b.runnable, codes(b)]).to.deep.equal(['FAILED', false, ['finished']]);
  });

  it('not-due: not due until T', async () => {
    const ref = await plain(1, schedule(90));
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([false, ['not-due']]);
    expect(reason(a, 'not-due').details).to.deep.equal({ runAt: iso(T0 + 90_000) });
    clock.advance(90);
    await worker('w1');
    expect((await explain(ref.id)).runnable).to.equal(true);
  });

  it('expired: its expiresAfter passed', async () => {
    const ref = await plain(1, schedule(0, { expiresAfter: 10 }));
    clock.advance(10);
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([false, ['expired']]);
    expect(reason(a, 'expired').details).to.deep.equal({ expiresAt: iso(T0 + 10_000) });
  });

  it('lease-expired: its worker stopped renewing the lease; the next recovery pass makes it claimable', async () => {
    const ref = await plain(1);
    await claimAs('gone', { leaseMs: 5000 });
    clock.advance(6);
    const a = await explain(ref.id);
    expect([a.status, codes(a)]).to.deep.equal(['READY', ['lease-expired']]);
    expect(reason(a, 'lease-expired').details).to.deep.equal({ workerId: 'gone', leaseUntil: iso(T0 + 5000) });
  });

  it('queue-paused: its queue is paused', async () => {
    const ref = await plain(1);
    await pauseQueue('work');
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([false, ['queue-paused']]);
    expect(reason(a, 'queue-paused').details).to.deep.equal({ queue: 'work' });
  });

  it('concurrency-full (queue): the queue\'s limit is full, with the ids of the tasks holding it', async () => {
    await setQueueLimits('work', { concurrency: 2 });
    const running = [await plain(1), await plain(2)];
    const ref = await plain(3);
    const plan = emptyFlowPlan();
    plan.queueLimits = new Map([['work', { paused: false, concurrency: 2, rateLimit: null }]]);
    expect(await claimAs('w1', { plan, limit: 5 })).to.have.length(2);
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([false, ['concurrency-full']]);
    expect(reason(a, 'concurrency-full').details).to.deep.equal({ scope: 'queue work', limit: 2, running: running.map((r) => r.id) });
  });

  it('concurrency-full (task): the task name\'s limit, as the live workers declare it, is full', async () => {
    const limits: Record<string, TaskLimits> = { 'why.plain': { concurrency: 1, rateLimit: null, concurrencyLimit: null, maxAttempts: null, maxRunTime: 3600 } };
    await worker('w1', { limits });
    const first = await plain(1, schedule(0, { queue: 'other' }));
    const ref = await plain(2);
    await claimAs('w1');
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([false, ['concurrency-full']]);
    expect(reason(a, 'concurrency-full').details).to.deep.equal({ scope: 'task why.plain', limit: 1, running: [first.id] });
  });

  it('concurrency-full (key): another task of its name and key runs', async () => {
    const first = await keyed('7');
    await keyed('8');
    const ref = await keyed('7');
    expect(await claimAs('w1', { limit: 5 })).to.have.length(2);
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([false, ['concurrency-full']]);
    expect(reason(a, 'concurrency-full').details).to.deep.equal({ scope: 'task why.keyed key user:7', limit: 1, running: [first.id] });
  });

  it('rate-limited: the window is used up, and it says when it reopens', async () => {
    await setQueueLimits('work', { rateLimit: { limit: 1, period: 60 } });
    await plain(1);
    const ref = await plain(2);
    const plan = emptyFlowPlan();
    plan.queueLimits = new Map([['work', { paused: false, concurrency: null, rateLimit: { limit: 1, period: 60 } }]]);
    clock.advance(5);
    expect(await claimAs('w1', { plan, limit: 5 })).to.have.length(1);
    clock.advance(10);
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([false, ['rate-limited']]);
    expect(reason(a, 'rate-limited').details).to.deep.equal({ scope: 'queue work', limit: 1, periodSeconds: 60, reopensAt: iso(T0 + 65_000) });
    clock.advance(50);
    await worker('w1');
    expect((await explain(ref.id)).runnable).to.equal(true);
  });

  it('tasks-ahead: N due tasks of its queue are claimed before it; it waits but is runnable', async () => {
    await plain(1, schedule(0, { priority: 5 }));
    await plain(2);
    await plain(3, schedule(0, { queue: 'elsewhere', priority: 9 }));
    await plain(4, schedule(60, { priority: 9 }));
    const ref = await plain(5);
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([true, ['tasks-ahead']]);
    expect(reason(a, 'tasks-ahead').details).to.deep.equal({ ahead: 2 });
  });

  it('tasks-ahead follows the priorityOrdering setting (ASC: lower numbers first)', async () => {
    await plain(1, schedule(0, { priority: -5 }));
    await plain(2, schedule(0, { priority: -3 }));
    await plain(3, schedule(0, { priority: 5 }));
    const ref = await plain(4);
    expect(reason(await explain(ref.id), 'tasks-ahead').details).to.deep.equal({ ahead: 1 });
    configure({ priorityOrdering: 'ASC' });
    try {
      expect(reason(await explain(ref.id), 'tasks-ahead').details).to.deep.equal({ ahead: 2 });
    } finally {
      configure({ priorityOrdering: 'DESC' });
    }
  });

  it('no-worker: no live worker runs the name from its queue (none, a lost one, one of other queues or names)', async () => {
    await db.store.knex(db.store.tables.workers).del();
    const ref = await plain(1);
    let a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([false, ['no-worker']]);
    expect(reason(a, 'no-worker').details).to.deep.equal({ name: 'why.plain', queue: 'work', liveWorkers: 0 });
    await worker('lost', { heartbeatAt: T0 - 60_000 });
    await worker('mail-only', { queues: ['mail'] });
    await worker('not-work', { excludeQueues: ['work'] });
    await worker('other-names', { names: ['why.keyed'] });
    a = await explain(ref.id);
    expect(codes(a)).to.deep.equal(['no-worker']);
    expect(reason(a, 'no-worker').details.liveWorkers).to.equal(3);
    await worker('w1', { queues: ['work'] });
    expect((await explain(ref.id)).runnable).to.equal(true);
  });

  it('run-budget: every live worker that runs it is a --duration run with less time left than its maxRunTime', async () => {
    await worker('w1', { runUntil: T0 + 30_000, limits: { 'why.plain': { maxRunTime: 3600 } } });
    const ownLimit = await plain(1, schedule(0, { maxRunTime: 10 }));
    const ref = await plain(2);
    expect((await explain(ownLimit.id)).runnable).to.equal(true);
    const a = await explain(ref.id);
    expect([a.runnable, codes(a).filter((c) => c !== 'tasks-ahead')]).to.deep.equal([false, ['run-budget']]);
    expect(reason(a, 'run-budget').details).to.deep.equal({ workers: ['w1'] });
    await worker('w2');
    expect((await explain(ref.id)).runnable).to.equal(true);
  });

  it('attempts-used-up: it failed before and its next attempt is its last', async () => {
    const ref = await plain(1, schedule(0, { maxAttempts: 2 }));
    expect(codes(await explain(ref.id))).to.deep.equal([]);
    await db.store.knex(db.store.tables.tasks).where('id', ref.id).update({ attempts: 1 });
    const a = await explain(ref.id);
    expect([a.runnable, codes(a)]).to.deep.equal([true, ['attempts-used-up']]);
    expect(reason(a, 'attempts-used-up').details).to.deep.equal({ attempts: 1, maxAttempts: 2 });
  });

  it('names every reason at once', async () => {
    await pauseQueue('work');
    await db.store.knex(db.store.tables.workers).del();
    const ref = await plain(1, schedule(30));
    expect(codes(await explain(ref.id))).to.deep.equal(['not-due', 'queue-paused', 'no-worker']);
  });

  it('an unknown or malformed id is a TaskNotFoundError naming it', async () => {
    expect(await explain('987654321').catch((e: unknown) => e)).to.be.instanceOf(TaskNotFoundError).with.property('message').that.matches(/987654321/);
    expect(await explain('abc').catch((e: unknown) => e)).to.be.instanceOf(TaskNotFoundError).with.property('message').that.matches(/"abc"/);
  });
});

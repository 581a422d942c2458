/**
 * Dead workers found in seconds, on every database: a RUNNING task whose worker's registry
 * heartbeat is stale (policy/status.ts deadWorkerAfterMs) AND whose process is gone is recovered
 * before its lease runs out; a worker that is alive (its process exists, though its heartbeats
 * stopped: a task blocking its event loop), on another machine, or that beat again keeps its
 * tasks until the lease runs out. Injected clocks; a real dead pid (a child that has exited).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { ManualClock } from '../../core/base/clock.js';
import { DEAD_WORKER_FLOOR_MS, deadWorkerAfterMs, registryBeatMs } from '../../core/policy/status.js';
import { Maintenance } from '../../core/worker/maintenance.js';
import { pidNamespace, processGoneHere } from '../../core/worker/process-identity.js';
import { beatWorker, registerWorker, stopWorker } from '../../core/store/workers.js';
import type { TaskRow } from '../../core/types.js';
import { contract } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { claimOne, claimReq, errorAt, LEASE_MS, newTask, seed, success, T0 } from '../helpers/store-fixtures.js';

/** The pid of a process that has exited (and was reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  if (!r.pid) throw new Error('could not start a child process');
  return r.pid;
}

const BEAT_MS = 3000;
const BOUND_MS = deadWorkerAfterMs(BEAT_MS);

describe('dead-worker bound (policy)', () => {
  it('beats the registry every 3 s at most and finds a worker dead after 3 missed beats, 8 s at least', () => {
    expect(registryBeatMs(10_000)).to.equal(3000);
    expect(registryBeatMs(1000)).to.equal(1000);
    expect(deadWorkerAfterMs(registryBeatMs(10_000))).to.equal(9000);
    expect(deadWorkerAfterMs(100)).to.equal(DEAD_WORKER_FLOOR_MS);
    expect(deadWorkerAfterMs(20_000)).to.equal(60_000);
  });

  it('a process is gone only when it ran on this machine and its pid no longer exists', () => {
    const pid = deadPid();
    const here = { host: os.hostname(), pidNamespace: pidNamespace() };
    expect(processGoneHere({ ...here, pid })).to.equal(true);
    expect(processGoneHere({ ...here, host: `${os.hostname()}-elsewhere`, pid })).to.equal(false);
    // A container with this host name (host networking) but a pid namespace of its own.
    expect(processGoneHere({ ...here, pidNamespace: 'pid:[1]', pid })).to.equal(false);
    expect(processGoneHere({ ...here, pid: process.pid })).to.equal(false);
    expect(processGoneHere({ ...here, pid: process.ppid })).to.equal(false);
    expect(processGoneHere({ ...here, pid: null })).to.equal(false);
  });
});

contract('dead workers found in seconds', (db) => {
  beforeEach(() => db.reset());
  const clock = new ManualClock(T0);

  /** A worker row beating at `beatAt`, and one task it claimed at T0 under a LEASE_MS lease. */
  async function workerWithTask(id: string, o: { host?: string; pid: number | null; beatAt: number; pidNamespace?: string | null }): Promise<TaskRow> {
    await registerWorker(db.store, {
      id,
      host: o.host ?? os.hostname(),
      pid: o.pid,
      version: '1',
      queues: null,
      excludeQueues: null,
      names: [],
      limits: {},
      concurrency: 1,
      startedAt: T0 - 60_000,
      heartbeatAt: o.beatAt,
      heartbeatMs: BEAT_MS,
      runUntil: null,
      pidNamespace: o.pidNamespace === undefined ? pidNamespace() : o.pidNamespace,
    });
    const [tid] = await seed(db, [newTask({ runAt: T0 - 1 })]);
    return claimOne(db, tid!, { workerId: id, nowMs: T0, leaseMs: LEASE_MS });
  }

  const maintenance = (log = recordingLogger()) =>
    new Maintenance({ store: db.store, clock, log, workerId: 'observer', names: [], maxAttemptsFor: () => 25, everyMs: 1000 });

  it('leaves a task of a worker that stopped cleanly to its lease, though its process is gone', async () => {
    const t = await workerWithTask('w-stopped', { pid: deadPid(), beatAt: T0 });
    // Its goodbye: a clean stop whose giving back failed leaves the task to its lease, as it logs.
    await stopWorker(db.store, 'w-stopped', T0);
    clock.set(T0 + BOUND_MS + 1_000);
    expect(await db.store.deadWorkerLeases(clock.now())).to.deep.equal([]);
    expect(await maintenance().recoverDeadWorkers()).to.equal(0);
    expect(await db.store.findPending(t.id)).to.deep.include({ lockedBy: 'w-stopped', claimToken: t.claimToken });
    // Nor does the guarded write take it, were a pass to try with what it read before the goodbye.
    const e = errorAt('gone', 1, clock.now());
    expect(await db.store.recoverLease(t, clock.now(), e, clock.now(), { deadWorker: 'gone' })).to.equal('lost');
    expect(await db.store.findPending(t.id)).to.deep.include({ lockedBy: 'w-stopped' });
  });

  it("recovers a gone worker's task once its registry heartbeat is stale, long before its lease runs out", async () => {
    const t = await workerWithTask('w-dead', { pid: deadPid(), beatAt: T0 });
    const log = recordingLogger();
    const m = maintenance(log);
    clock.set(T0 + BOUND_MS); // exactly at the bound: not yet
    expect(await m.recoverDeadWorkers()).to.equal(0);
    clock.set(T0 + BOUND_MS + 1);
    expect(T0 + BOUND_MS + 1).to.be.lessThan(t.lockedUntil!);
    expect(await m.recoverDeadWorkers()).to.equal(1);
    const row = await db.store.findPending(t.id);
    expect(row).to.deep.include({ lockedBy: null, lockedUntil: null, claimToken: t.claimToken, attempts: 1, runAt: T0 + BOUND_MS + 1 });
    expect(row!.errors[0]!.message).to.match(/worker w-dead is gone \(process \d+ on .+ no longer exists/);
    expect(log.find('warn', /recovered a task/)).to.have.length(1);
    // A new claim fences the dead worker's late result out.
    const [again] = await db.store.claim(claimReq({ workerId: 'worker-new', nowMs: T0 + BOUND_MS + 2 }));
    expect(again).to.deep.include({ id: t.id, attempts: 2 });
    expect((await db.store.completeMany([success(t, T0 + BOUND_MS + 3, '"late"')], T0 + BOUND_MS + 3)).lost).to.have.length(1);
  });

  it('never recovers early from a worker whose process exists: its heartbeats stopped because a task blocks its event loop', async () => {
    const t = await workerWithTask('w-stalled', { pid: process.ppid, beatAt: T0 });
    const m = maintenance();
    clock.set(T0 + LEASE_MS - 1);
    expect(await db.store.deadWorkerLeases(clock.now())).to.have.length(1);
    expect(await m.recoverDeadWorkers()).to.equal(0);
    expect(await m.recoverExpiredLeases()).to.equal(0);
    expect(await db.store.findPending(t.id)).to.deep.equal(t);
    // Its lease running out is what recovers it, as before.
    clock.set(T0 + LEASE_MS + 1);
    expect(await m.recoverExpiredLeases()).to.equal(1);
  });

  it('never recovers early from a worker on another machine or in another pid namespace, nor from one that still beats', async () => {
    const far = await workerWithTask('w-far', { host: 'another-machine', pid: deadPid(), beatAt: T0 });
    const container = await workerWithTask('w-container', { pid: deadPid(), beatAt: T0, pidNamespace: 'pid:[1]' });
    const beating = await workerWithTask('w-beating', { pid: deadPid(), beatAt: T0 + 20_000 });
    clock.set(T0 + 20_000 + BOUND_MS - 1);
    expect(await maintenance().recoverDeadWorkers()).to.equal(0);
    expect(await db.store.findPending(far.id)).to.deep.equal(far);
    expect(await db.store.findPending(container.id)).to.deep.equal(container);
    expect(await db.store.findPending(beating.id)).to.deep.equal(beating);
  });

  it('a task claimed by a worker with no registry row waits for its lease', async () => {
    const [tid] = await seed(db, [newTask({ runAt: T0 - 1 })]);
    const t = await claimOne(db, tid!, { workerId: 'w-unregistered', nowMs: T0 });
    clock.set(T0 + LEASE_MS - 1);
    expect(await db.store.deadWorkerLeases(clock.now())).to.deep.equal([]);
    expect(await maintenance().recoverDeadWorkers()).to.equal(0);
    expect(await db.store.findPending(t.id)).to.deep.equal(t);
  });

  it("the recovery write is guarded: a worker that beat after being listed keeps its task ('lost')", async () => {
    const t = await workerWithTask('w-late', { pid: deadPid(), beatAt: T0 });
    const now = T0 + BOUND_MS + 1;
    const [listed] = await db.store.deadWorkerLeases(now);
    expect(listed!.task).to.deep.equal(t);
    await beatWorker(db.store, 'w-late', now - 1);
    expect(await db.store.recoverLease(listed!.task, now, errorAt('gone', 1, now), now, { deadWorker: 'gone' })).to.equal('lost');
    expect(await db.store.fail(listed!.task, { nowMs: now, record: errorAt('gone', 1, now), successorAt: null, attempts: 1, expiredLeaseBefore: now, deadWorker: 'gone' })).to.equal(false);
    // Without the dead-worker guard, a live lease is never recovered.
    expect(await db.store.recoverLease(listed!.task, now, errorAt('gone', 1, now), now)).to.equal('lost');
    expect(await db.store.findPending(t.id)).to.deep.equal(t);
  });

  it('fails (instead of retrying) a dead worker task whose attempts are used up, fenced the same way', async () => {
    const t = await workerWithTask('w-last', { pid: deadPid(), beatAt: T0 });
    clock.set(T0 + BOUND_MS + 1);
    const m = new Maintenance({ store: db.store, clock, log: recordingLogger(), workerId: 'observer', names: [], maxAttemptsFor: () => 1, everyMs: 1000 });
    expect(await m.recoverDeadWorkers()).to.equal(1);
    expect(await db.store.findPending(t.id)).to.equal(null);
    expect((await db.store.findCompleted(t.id))!.failedAt).to.equal(T0 + BOUND_MS + 1);
  });
});

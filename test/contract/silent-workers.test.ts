/**
 * Dead workers found in seconds on any host (DEADWORKER-02), on every database: a RUNNING task
 * whose worker is silent (its liveness beat and its registry heartbeat both older than their
 * bounds, policy/liveness.ts isSilent) is recovered before its lease runs out, by a worker whose
 * own beats have landed for long enough; a worker whose liveness beat goes on (its event loop is
 * blocked), one without a beat (turned off, an older version) and one that beat again meanwhile
 * keep their tasks until the lease runs out. Injected clocks for the rule; the real thread for
 * the beat (worker/liveness.ts): it goes on while this process's event loop is blocked, and a
 * beat that does not land fences the worker.
 */
import { expect } from 'chai';
import { ManualClock, systemClock } from '../../core/base/clock.js';
import { whileThreadsStart } from '../../core/base/threads.js';
import { WorkerStoppedError } from '../../core/errors.js';
import { livenessFenceMs } from '../../core/policy/liveness.js';
import { beatAlive, registerWorker } from '../../core/store/workers.js';
import type { TaskRow } from '../../core/types.js';
import { Liveness } from '../../core/worker/liveness.js';
import { Maintenance } from '../../core/worker/maintenance.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { claimOne, claimReq, errorAt, LEASE_MS, newTask, seed, success, T0 } from '../helpers/store-fixtures.js';

const TIMEOUT_MS = 12_000;
const BEAT_MS = 3000;

contract('silent workers found in seconds on any host', (db) => {
  beforeEach(() => db.reset());
  const clock = new ManualClock(T0);

  const register = (id: string, beatAt: number, host = 'another-machine') =>
    registerWorker(db.store, {
      id,
      host,
      // A live process, on another machine anyway: only silence can tell it is gone.
      pid: process.pid,
      version: '1',
      queues: null,
      excludeQueues: null,
      names: [],
      limits: {},
      concurrency: 1,
      startedAt: T0 - 60_000,
      heartbeatAt: beatAt,
      heartbeatMs: BEAT_MS,
      runUntil: null,
      pidNamespace: null,
    });

  /** A worker whose registry heartbeat was at `beatAt` and liveness beat at `aliveAt`, holding one task claimed at T0. */
  async function workerWithTask(id: string, o: { beatAt: number; aliveAt: number | null }): Promise<TaskRow> {
    await register(id, o.beatAt);
    if (o.aliveAt !== null) expect(await beatAlive(db.store, id, o.aliveAt, TIMEOUT_MS)).to.equal(true);
    const [tid] = await seed(db, [newTask({ runAt: T0 - 1 })]);
    return claimOne(db, tid!, { workerId: id, nowMs: T0, leaseMs: LEASE_MS });
  }

  const row = async (id: string) => (await db.store.knex(db.store.tables.workers).where('id', id).first()) as Record<string, unknown> | undefined;

  /** An observer whose own beats have landed for `judgingMs`. */
  const maintenance = (o: { judgingMs?: number; maxAttempts?: number; log?: ReturnType<typeof recordingLogger> } = {}) =>
    new Maintenance({
      store: db.store,
      clock,
      log: o.log ?? recordingLogger(),
      workerId: 'observer',
      names: [],
      maxAttemptsFor: () => o.maxAttempts ?? 25,
      everyMs: 1000,
      livenessContinuousMs: () => o.judgingMs ?? 60_000,
    });

  it('a liveness beat writes the time and the timeout, never goes back, and a new registration clears it', async () => {
    await register('w-beat', T0);
    expect(await row('w-beat')).to.deep.include({ alive_at: null, liveness_ms: null });
    expect(await beatAlive(db.store, 'w-beat', T0, TIMEOUT_MS)).to.equal(true);
    expect(Number((await row('w-beat'))!.alive_at)).to.equal(T0);
    expect(Number((await row('w-beat'))!.liveness_ms)).to.equal(TIMEOUT_MS);
    // A late answer of an older beat does not undo a newer one.
    expect(await beatAlive(db.store, 'w-beat', T0 - 5000, TIMEOUT_MS)).to.equal(true);
    expect(Number((await row('w-beat'))!.alive_at)).to.equal(T0);
    expect(await beatAlive(db.store, 'w-beat', T0 + 2000, TIMEOUT_MS)).to.equal(true);
    expect(Number((await row('w-beat'))!.alive_at)).to.equal(T0 + 2000);
    // Another process under the same worker id has no beat until its own first one.
    await register('w-beat', T0 + 3000);
    expect(await row('w-beat')).to.deep.include({ alive_at: null, liveness_ms: null });
    expect(await beatAlive(db.store, 'w-missing', T0, TIMEOUT_MS)).to.equal(false);
  });

  it("recovers a silent worker's task on another host once its beat and heartbeat are older than their bounds, long before its lease", async () => {
    const t = await workerWithTask('w-silent', { beatAt: T0, aliveAt: T0 });
    const log = recordingLogger();
    const m = maintenance({ log });
    clock.set(T0 + TIMEOUT_MS); // exactly at the bound: not yet
    expect(await m.recoverDeadWorkers()).to.equal(0);
    clock.set(T0 + TIMEOUT_MS + 1);
    expect(T0 + TIMEOUT_MS + 1).to.be.lessThan(t.lockedUntil!);
    expect(await m.recoverDeadWorkers()).to.equal(1);
    const p = await db.store.findPending(t.id);
    expect(p).to.deep.include({ lockedBy: null, lockedUntil: null, claimToken: t.claimToken, attempts: 1, runAt: T0 + TIMEOUT_MS + 1 });
    expect(p!.errors[0]!.message).to.equal(
      `worker w-silent on another-machine is silent: no liveness beat for 12.0 s, over its livenessTimeout of 12 s (last at ${new Date(T0).toISOString()}): it is dead, stopped or cut off from the database; the lost run counts as attempt 1`,
    );
    expect(log.find('warn', /recovered a task/)).to.have.length(1);
    // A new claim fences the silent worker's late result out.
    const [again] = await db.store.claim(claimReq({ workerId: 'worker-new', nowMs: T0 + TIMEOUT_MS + 2 }));
    expect(again).to.deep.include({ id: t.id, attempts: 2 });
    expect((await db.store.completeMany([success(t, T0 + TIMEOUT_MS + 3, '"late"')], T0 + TIMEOUT_MS + 3)).lost).to.have.length(1);
  });

  it('never recovers early a worker whose liveness beat goes on (a blocked event loop), one without a beat, or one whose heartbeat goes on', async () => {
    const blocked = await workerWithTask('w-blocked', { beatAt: T0, aliveAt: T0 + 20_000 });
    const noBeat = await workerWithTask('w-no-beat', { beatAt: T0, aliveAt: null });
    // An older version took over the worker id: its heartbeat goes on, the last beat stays old.
    const older = await workerWithTask('w-older', { beatAt: T0 + 20_000, aliveAt: T0 });
    clock.set(T0 + 25_000);
    expect(await db.store.deadWorkerLeases(clock.now()), 'the blocked and the beatless are listed (stale heartbeats)').to.have.length(2);
    expect(await maintenance().recoverDeadWorkers()).to.equal(0);
    for (const t of [blocked, noBeat, older]) expect(await db.store.findPending(t.id)).to.deep.equal(t);
    // Their lease running out is what recovers them, as before.
    clock.set(T0 + LEASE_MS + 1);
    expect(await maintenance().recoverExpiredLeases()).to.equal(3);
  });

  it("judges silence only after its own beats have landed for the silent worker's whole timeout", async () => {
    const t = await workerWithTask('w-silent', { beatAt: T0, aliveAt: T0 });
    clock.set(T0 + TIMEOUT_MS + 1);
    expect(await maintenance({ judgingMs: 0 }).recoverDeadWorkers(), 'no beat of its own').to.equal(0);
    expect(await maintenance({ judgingMs: TIMEOUT_MS - 1 }).recoverDeadWorkers(), 'beats for less than the timeout').to.equal(0);
    expect(await db.store.findPending(t.id)).to.deep.equal(t);
    expect(await maintenance({ judgingMs: TIMEOUT_MS }).recoverDeadWorkers()).to.equal(1);
  });

  it("the recovery write is guarded: a worker whose beat landed after it was listed keeps its task ('lost')", async () => {
    const t = await workerWithTask('w-late', { beatAt: T0, aliveAt: T0 });
    const now = T0 + TIMEOUT_MS + 1;
    const [listed] = await db.store.deadWorkerLeases(now);
    expect(listed).to.deep.include({ task: t, aliveAt: T0, livenessMs: TIMEOUT_MS });
    await beatAlive(db.store, 'w-late', now - 1, TIMEOUT_MS);
    expect(await db.store.recoverLease(listed!.task, now, errorAt('silent', 1, now), now, { deadWorker: 'silent' })).to.equal('lost');
    expect(await db.store.fail(listed!.task, { nowMs: now, record: errorAt('silent', 1, now), successorAt: null, attempts: 1, expiredLeaseBefore: now, deadWorker: 'silent' })).to.equal(false);
    expect(await db.store.findPending(t.id)).to.deep.equal(t);
  });

  it('fails (instead of retrying) a silent worker task whose attempts are used up, fenced the same way', async () => {
    const t = await workerWithTask('w-last', { beatAt: T0, aliveAt: T0 });
    clock.set(T0 + TIMEOUT_MS + 1);
    expect(await maintenance({ maxAttempts: 1 }).recoverDeadWorkers()).to.equal(1);
    expect(await db.store.findPending(t.id)).to.equal(null);
    expect((await db.store.findCompleted(t.id))!.failedAt).to.equal(T0 + TIMEOUT_MS + 1);
  });

  describe('the liveness thread', () => {
    /** Times (real) the hooks were called. */
    const calls: Array<{ hook: 'fence' | 'resume'; reason?: unknown }> = [];
    const liveness = (id: string, timeoutMs: number) =>
      new Liveness({
        spec: db.store.conn.spec,
        tablePrefix: db.settings.tablePrefix,
        workerId: id,
        clock: systemClock,
        log: recordingLogger(),
        timeoutMs,
        timeouts: db.store.conn.timeouts,
        onFence: (reason) => calls.push({ hook: 'fence', reason }),
        onResume: () => calls.push({ hook: 'resume' }),
      });
    beforeEach(() => (calls.length = 0));

    it('beats from a thread while the event loop is blocked (none on SQLite)', async function () {
      this.timeout(30_000);
      await register('w-thread', Date.now(), 'this-machine');
      const l = liveness('w-thread', TIMEOUT_MS);
      if (db.name === 'sqlite') {
        expect(l.unavailable).to.match(/^SQLite/);
        expect(l.continuousMs()).to.equal(0);
        return;
      }
      expect(l.unavailable).to.equal(null);
      l.start();
      try {
        await waitUntil(async () => (await row('w-thread'))!.alive_at !== null, 'the first beat', 15_000, 50);
        const blockedAt = Date.now();
        // Blocks this event loop for 5 s, longer than the judging gap (4 s).
        while (Date.now() - blockedAt < 5000);
        // Read at once: had the thread stopped with the loop, the last beat would be 5 s old.
        expect(l.continuousMs(), 'beats landed with no gap over 4 s through the block').to.be.at.least(5000);
        expect(l.fenced).to.equal(false);
        expect(calls).to.deep.equal([]);
      } finally {
        await l.stop();
      }
    });

    if (db.name === 'sqlite') return;
    it("calls the thread-start listeners on every turn of the event loop until its thread is online, then no more (the CLI's young-generation keeper sets its heap flag meanwhile)", async function () {
      this.timeout(30_000);
      await register('w-online', Date.now(), 'this-machine');
      let told = 0;
      const off = whileThreadsStart(() => told++);
      const l = liveness('w-online', TIMEOUT_MS);
      const turns = (n: number) => new Promise<void>((resolve) => {
        const next = (left: number) => (left === 0 ? resolve() : setImmediate(() => next(left - 1)));
        next(n);
      });
      try {
        expect(told, 'nothing before the thread starts').to.equal(0);
        l.start();
        await waitUntil(async () => (await row('w-online'))!.alive_at !== null, 'the first beat', 15_000, 50);
        expect(told, 'called while the thread came up, on more than one turn').to.be.above(1);
        const after = told;
        await turns(20);
        expect(told, 'no more once it is online').to.equal(after);
      } finally {
        off();
        await l.stop();
      }
    });

    it('fences the worker when its beats stop landing, and resumes when they land again', async function () {
      this.timeout(40_000);
      const timeoutMs = 9000;
      await register('w-fence', Date.now(), 'this-machine');
      const l = liveness('w-fence', timeoutMs);
      l.start();
      try {
        await waitUntil(async () => (await row('w-fence'))!.alive_at !== null, 'the first beat', 15_000, 50);
        // The row goes: the beats find nothing to update, as when they cannot reach the database.
        await db.store.knex(db.store.tables.workers).where('id', 'w-fence').del();
        const goneAt = Date.now();
        await waitUntil(() => l.fenced, 'the fence', 20_000, 50);
        const fencedAfter = Date.now() - goneAt;
        expect(fencedAfter, 'the fence comes after two thirds of the timeout, counted from the last beat that landed').to.be.within(livenessFenceMs(timeoutMs) - 1500 - 250, livenessFenceMs(timeoutMs) + 1500);
        expect(calls).to.have.length(1);
        expect(calls[0]!.hook).to.equal('fence');
        expect(calls[0]!.reason).to.be.instanceOf(WorkerStoppedError);
        expect(calls[0]!.reason).to.have.property('release', true);
        expect(l.continuousMs()).to.equal(0);
        await register('w-fence', Date.now(), 'this-machine');
        await waitUntil(() => !l.fenced, 'the beats to land again', 15_000, 50);
        expect(calls.map((c) => c.hook)).to.deep.equal(['fence', 'resume']);
      } finally {
        await l.stop();
      }
    });
  });
});

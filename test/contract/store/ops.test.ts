/**
 * Store conformance: the operations verbs beside the Store (store/find.ts findTasks,
 * store/cancel.ts cancelTask, store/admin.ts stats, delete and retry, store/prune.ts,
 * store/schedules.ts, store/task-detail.ts) on every database. The READY/RUNNING rule is checked
 * in all its SQL forms against policy/status.ts at the edges of a lease.
 */
import { expect } from 'chai';
import { ManualClock, resetClock, setClock } from '../../../core/base/clock.js';
import { NotMigratedError, TaskNotFoundError, ValidationError } from '../../../core/errors.js';
import { pendingStatus } from '../../../core/policy/status.js';
import { collectStats, deleteTasks, failedByIds, planDelete, retryFailed, TaskChangedError } from '../../../core/store/admin.js';
import { cancelTask } from '../../../core/store/cancel.js';
import { findTasks } from '../../../core/store/find.js';
import { pruneResults } from '../../../core/store/prune.js';
import {
  advanceLastSlot,
  countPendingOfSchedule,
  declareSchedule,
  enqueueSlot,
  listSchedules,
  pendingBySchedule,
  registerSchedule,
  removeSchedules,
  trimSlots,
  type ScheduleDeclaration,
} from '../../../core/store/schedules.js';
import { Store } from '../../../core/store/store.js';
import { taskDetail } from '../../../core/store/task-detail.js';
import type { Status, TaskRow } from '../../../core/types.js';
import { contract } from '../../helpers/databases.js';
import { claimOne, claimReq, completedRow, count, errorAt, JOB, LEASE_MS, newTask, OTHER, pendingRows, seed, success, T0 } from '../../helpers/store-fixtures.js';

const DAY = 86_400_000;

const ids = (f: { pending: TaskRow[]; completed: Array<{ taskId: string }> }) => [...f.pending.map((t) => t.id), ...f.completed.map((c) => c.taskId)];

contract('store: ops', (db) => {
  const clock = new ManualClock(T0);
  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
  });
  afterEach(() => resetClock());

  /** A task finished by the store itself: succeeded (or failed) at `finishedAt`. */
  async function finished(failed: boolean, finishedAt: number, extra: Parameters<typeof newTask>[0] = {}): Promise<string> {
    const [id] = await seed(db, [newTask({ runAt: finishedAt - 10, ...extra })]);
    const t = await claimOne(db, id!, { nowMs: finishedAt - 5, names: [extra.name ?? JOB] });
    if (failed) await db.store.fail(t, { nowMs: finishedAt, record: errorAt('no', t.attempts, finishedAt), successorAt: null, attempts: t.attempts });
    else await db.store.completeMany([success(t, finishedAt, '"ok"')], finishedAt);
    return id!;
  }

  describe('findTasks and the READY/RUNNING rule', () => {
    it('gives every pending row the status pendingStatus gives it, before, at and after its lease ends, in findTasks, stats and taskDetail alike', async () => {
      const [live, due, future] = await seed(db, [newTask({ runAt: T0 - 5 }), newTask({ runAt: T0 - 5 }), newTask({ runAt: T0 + 5000 })]);
      await claimOne(db, live!, { leaseMs: 1000 }); // lease ends at T0 + 1000
      expect([due, future]).to.have.length(2);
      for (const now of [T0, T0 + 999, T0 + 1000, T0 + 1001]) {
        const rows = await pendingRows(db);
        const want = (s: Status) => rows.filter((r) => pendingStatus(r, now) === s).map((r) => r.id);
        for (const s of ['READY', 'RUNNING'] as const) {
          expect(ids(await findTasks(db.store, { state: s }, now)), `${s} at +${now - T0}`).to.deep.equal(want(s));
        }
        const stats = await collectStats(db.store, now);
        expect(stats.totals, `stats at +${now - T0}`).to.deep.equal({ READY: want('READY').length, RUNNING: want('RUNNING').length, SUCCESSFUL: 0, FAILED: 0 });
        for (const r of rows) expect((await taskDetail(db.store, r.id, now)).status).to.equal(pendingStatus(r, now));
      }
      // The boundary itself: RUNNING until the last millisecond of the lease.
      expect(ids(await findTasks(db.store, { state: 'RUNNING' }, T0 + 999))).to.deep.equal([live]);
      expect(ids(await findTasks(db.store, { state: 'RUNNING' }, T0 + 1000))).to.deep.equal([]);
    });

    it('filters by queue (a name, null for none, a list mixing both), by name, creator and state', async () => {
      const [a, b, none, other, byUser] = await seed(db, [
        newTask({ queue: 'a' }),
        newTask({ queue: 'b' }),
        newTask(),
        newTask({ name: OTHER, queue: 'a' }),
        newTask({ queue: 'a', creatorType: 'user', creatorId: '7' }),
      ]);
      const failedA = await finished(true, T0 - 100, { queue: 'a' });
      const okNone = await finished(false, T0 - 200);
      const find = async (f: Parameters<typeof findTasks>[1]) => ids(await findTasks(db.store, f, T0)).sort();
      expect(await find({ queue: 'a' })).to.deep.equal([a, other, byUser, failedA].sort());
      expect(await find({ queue: null })).to.deep.equal([none, okNone].sort());
      expect(await find({ queue: ['b', null] })).to.deep.equal([b, none, okNone].sort());
      expect(await find({ name: OTHER })).to.deep.equal([other]);
      expect(await find({ name: [OTHER, JOB], queue: 'b' })).to.deep.equal([b]);
      expect(await find({ creator: { type: 'user', id: 7 } })).to.deep.equal([byUser]);
      expect(await find({ state: 'FAILED' })).to.deep.equal([failedA]);
      expect(await find({ state: ['SUCCESSFUL', 'FAILED'] })).to.deep.equal([failedA, okNone].sort());
      expect(await find({ state: 'SUCCESSFUL', queue: 'a' })).to.deep.equal([]);
    });

    it('lists pending tasks first (by run time, then id), then finished ones (newest first), the limit counting both', async () => {
      const [p1, p2, p3] = await seed(db, [newTask({ runAt: T0 + 30 }), newTask({ runAt: T0 + 10 }), newTask({ runAt: T0 + 10 })]);
      const older = await finished(false, T0 - 500);
      const newer = await finished(true, T0 - 100);
      expect(ids(await findTasks(db.store, {}, T0))).to.deep.equal([p2, p3, p1, newer, older]);
      expect(ids(await findTasks(db.store, { limit: 4 }, T0))).to.deep.equal([p2, p3, p1, newer]);
      expect(ids(await findTasks(db.store, { limit: 2 }, T0))).to.deep.equal([p2, p3]);
    });

    it('with finishedWithin, lists finished tasks only, those finished within that many seconds', async () => {
      await seed(db, [newTask()]);
      const recent = await finished(false, T0 - 59_000);
      await finished(true, T0 - 61_000);
      expect(ids(await findTasks(db.store, { finishedWithin: 60 }, T0))).to.deep.equal([recent]);
    });

    it('refuses an unknown state or a limit below 1 with a ValidationError naming the value', async () => {
      for (const f of [{ state: 'DONE' as Status }, { limit: 0 }, { limit: 1.5 }]) {
        const err = await findTasks(db.store, f, T0).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(ValidationError);
        expect((err as Error).message).to.include(JSON.stringify(Object.values(f)[0]));
      }
    });
  });

  describe('cancelTask', () => {
    it('fails a READY task at once with a CancelledError, keeping its attempts and ending a repeat chain', async () => {
      const [id] = await seed(db, [newTask({ repeatEvery: 60 })]);
      clock.set(T0 + 7);
      expect(await cancelTask(db.store, id!)).to.deep.equal({ id, status: 'FAILED' });
      const done = await completedRow(db, id!);
      expect(done).to.include({ failedAt: T0 + 7, finishedAt: T0 + 7, attempts: 0, workerId: null, returnValue: null });
      expect(done.errors).to.have.length(1);
      expect(done.errors[0]).to.include({ class: 'CancelledError', attempt: 0, at: T0 + 7, workerId: null });
      expect(done.errors[0]!.message).to.include('cancelled before it ran');
      expect(await count(db, 'tasks')).to.equal(0);
    });

    it('asks the worker of a RUNNING task to cancel it (seen at its heartbeat) and changes nothing else', async () => {
      const [id] = await seed(db, [newTask()]);
      const t = await claimOne(db, id!);
      expect(await cancelTask(db.store, id!)).to.deep.equal({ id, status: 'RUNNING' });
      expect(await db.store.findPending(id!)).to.deep.equal({ ...t, cancelRequested: true });
      expect(await db.store.heartbeat(t.lockedBy!, [t], T0 + LEASE_MS)).to.deep.equal({ lost: [], cancelled: [t.claimToken], retaken: [] });
    });

    it("fails at once a task whose worker's lease ran out, naming that worker; that worker can no longer settle it", async () => {
      const [id] = await seed(db, [newTask()]);
      const t = await claimOne(db, id!, { workerId: 'worker-gone' });
      clock.set(t.lockedUntil!); // the lease ends now: READY
      expect(await cancelTask(db.store, id!)).to.deep.equal({ id, status: 'FAILED' });
      const done = await completedRow(db, id!);
      expect(done).to.include({ attempts: 1, failedAt: t.lockedUntil, workerId: 'worker-gone' });
      expect(done.errors[0]!.message).to.include('worker-gone');
      expect((await db.store.completeMany([success(t, T0 + LEASE_MS + 1, '1')], T0 + LEASE_MS + 1)).lost).to.have.length(1);
    });

    it('refuses a finished task with a ValidationError naming its status, and an unknown id with TaskNotFoundError', async () => {
      const ok = await finished(false, T0 - 10);
      const failed = await finished(true, T0 - 10);
      for (const [id, status] of [[ok, 'SUCCESSFUL'], [failed, 'FAILED']] as const) {
        const err = await cancelTask(db.store, id).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(ValidationError);
        expect((err as Error).message).to.include(`#${id}`).and.include(status);
      }
      expect(await cancelTask(db.store, '987654321').catch((e: unknown) => e)).to.be.instanceOf(TaskNotFoundError);
    });
  });

  describe('stats, delete and retry', () => {
    it('counts per queue and status, and only the queues asked for', async () => {
      await seed(db, [newTask({ queue: 'a' }), newTask({ queue: 'a', runAt: T0 + 1 }), newTask({ queue: 'b' }), newTask()]);
      const [running] = await seed(db, [newTask({ queue: 'b', runAt: T0 - 10 })]);
      await claimOne(db, running!, { names: [JOB], queues: ['b'], limit: 1 });
      await finished(true, T0 - 5, { queue: 'a', name: OTHER });
      await finished(false, T0 - 5, { name: OTHER });
      const s = await collectStats(db.store, T0);
      expect(s.queues).to.deep.equal([
        { queue: null, READY: 1, RUNNING: 0, SUCCESSFUL: 1, FAILED: 0 },
        { queue: 'a', READY: 2, RUNNING: 0, SUCCESSFUL: 0, FAILED: 1 },
        { queue: 'b', READY: 1, RUNNING: 1, SUCCESSFUL: 0, FAILED: 0 },
      ]);
      expect(s.totals).to.deep.equal({ READY: 4, RUNNING: 1, SUCCESSFUL: 1, FAILED: 1 });
      const onlyA = await collectStats(db.store, T0, ['a']);
      expect(onlyA.queues).to.deep.equal([{ queue: 'a', READY: 2, RUNNING: 0, SUCCESSFUL: 0, FAILED: 1 }]);
      expect(onlyA.totals).to.deep.equal({ READY: 2, RUNNING: 0, SUCCESSFUL: 0, FAILED: 1 });
    });

    it('deletes a READY task, one under an expired lease and finished ones without force, in one go', async () => {
      const [ready, expired] = await seed(db, [newTask({ runAt: T0 + 10 }), newTask({ runAt: T0 - LEASE_MS - 10 })]);
      await claimOne(db, expired!, { nowMs: T0 - LEASE_MS - 1 }); // its lease ended 1 ms ago
      const ok = await finished(false, T0 - 1);
      const failed = await finished(true, T0 - 1);
      const plan = await planDelete(db.store, [ready!, expired!, ok, failed], T0, false);
      expect(plan.map((p) => [p.id, p.status, p.where])).to.deep.equal([
        [ready, 'READY', 'pending'],
        [expired, 'READY', 'pending'],
        [ok, 'SUCCESSFUL', 'completed'],
        [failed, 'FAILED', 'completed'],
      ]);
      expect(await deleteTasks(db.store, plan, T0, false)).to.equal(4);
      expect(await count(db, 'tasks')).to.equal(0);
      expect(await count(db, 'completed')).to.equal(0);
    });

    it('deletes nothing of a plan (TaskChangedError) when a planned task started running meanwhile; force deletes it', async () => {
      const [a, b] = await seed(db, [newTask(), newTask()]);
      const ok = await finished(false, T0 - 1, { name: OTHER });
      const plan = await planDelete(db.store, [a!, b!, ok], T0, false);
      const t = await claimOne(db, b!, { names: [JOB] });
      const err = await deleteTasks(db.store, plan, T0, false).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(TaskChangedError);
      expect((err as Error).message).to.include(`#${b} started running`);
      expect(await count(db, 'tasks')).to.equal(2);
      expect(await count(db, 'completed')).to.equal(1);
      expect(await planDelete(db.store, [b!], T0, false).catch((e: unknown) => e)).to.be.instanceOf(ValidationError);
      expect(await deleteTasks(db.store, await planDelete(db.store, [a!, b!, ok], T0, true), T0, true)).to.equal(3);
      expect(await db.store.findPending(t.id)).to.equal(null);
    });

    it('retries a failed task as a new pending one-off copy: the same call due now, no attempts, recurrence, expiry or history; the failed record stays', async () => {
      const failedId = await finished(true, T0 - 1000, {
        queue: 'mail',
        priority: 4,
        verboseName: 'Mail',
        creatorType: 'user',
        creatorId: '5',
        maxAttempts: 2,
        repeatEvery: 60,
        expiresAt: T0 + 1,
        recurringKey: 'k',
      });
      const failed = await failedByIds(db.store, [failedId], T0);
      const [out] = await retryFailed(db.store, failed, T0 + 3);
      expect(out).to.deep.include({ id: failedId, name: JOB, queue: 'mail' });
      const copy = (await db.store.findPending(out!.newId))!;
      const orig = await completedRow(db, failedId);
      expect(copy).to.deep.include({
        name: orig.name,
        args: orig.args,
        hash: orig.hash,
        queue: 'mail',
        priority: 4,
        verboseName: 'Mail',
        creatorType: 'user',
        creatorId: '5',
        runAt: T0 + 3,
        scheduledAt: T0 + 3,
        enqueuedAt: T0 + 3,
        attempts: 0,
        maxAttempts: null,
        repeatEvery: 0,
        recurringKey: null,
        expiresAt: null,
        lastError: null,
        errors: [],
        lockedBy: null,
      });
      expect(await db.store.findCompleted(failedId)).to.deep.equal(orig);
      expect(await retryFailed(db.store, [], T0)).to.deep.equal([]);
    });
  });

  describe('prune', () => {
    it('deletes old results in statements of batchSize rows, reporting progress after each, and keeps recent results and pending tasks', async () => {
      const old: string[] = [];
      for (let i = 0; i < 10; i++) old.push(await finished(i % 2 === 0, T0 - 40 * DAY + i));
      const recent = await finished(false, T0 - DAY);
      await seed(db, [newTask({ runAt: T0 - 90 * DAY })]);
      const progress: Array<[number, number]> = [];
      const report = await pruneResults(db.store, { days: 30, nowMs: T0, batchSize: 3, onProgress: (d, t) => progress.push([d, t]) });
      expect(report).to.include({ tasks: 10, batches: 4, dryRun: false });
      expect(progress).to.deep.equal([[3, 10], [6, 10], [9, 10], [10, 10]]);
      expect(await count(db, 'completed')).to.equal(1);
      expect(await db.store.findCompleted(recent)).to.not.equal(null);
      expect(await count(db, 'tasks')).to.equal(1);
    });

    it('needs no extra statement when the rows fill the last batch exactly, and a dry run deletes nothing', async () => {
      for (let i = 0; i < 9; i++) await finished(false, T0 - 40 * DAY + i);
      const dry = await pruneResults(db.store, { days: 30, nowMs: T0, batchSize: 3, dryRun: true });
      expect(dry).to.include({ tasks: 9, batches: 0, dryRun: true });
      expect(await count(db, 'completed')).to.equal(9);
      const report = await pruneResults(db.store, { days: 30, nowMs: T0, batchSize: 3 });
      expect(report).to.include({ tasks: 9, batches: 3 });
      expect(await count(db, 'completed')).to.equal(0);
    });
  });

  describe('schedules', () => {
    const decl = (extra: Partial<ScheduleDeclaration> = {}): ScheduleDeclaration => ({ name: JOB, key: 'daily', cron: '0 3 * * *', timezone: 'Europe/Berlin', args: '[]', catchUp: 'skip', ...extra });

    it('registers a schedule once: a twin registration keeps the first row; schedules list by name and key', async () => {
      await registerSchedule(db.store, decl(), T0, 'worker-a');
      await registerSchedule(db.store, decl({ cron: '0 4 * * *' }), T0 + 5, 'worker-b');
      await registerSchedule(db.store, decl({ key: 'a-key' }), T0 + 6, 'worker-b');
      await registerSchedule(db.store, decl({ name: 'a.first' }), T0 + 7, 'worker-c');
      const list = await listSchedules(db.store);
      expect(list.map((s) => [s.name, s.key])).to.deep.equal([['a.first', 'daily'], [JOB, 'a-key'], [JOB, 'daily']]);
      expect(list[2]).to.deep.equal({ ...decl(), lastSlot: T0, updatedAt: T0, updatedBy: 'worker-a' });
    });

    it('declare rewrites what the task files say and who said it, keeps the last slot, and creates nothing for an unknown schedule', async () => {
      await registerSchedule(db.store, decl(), T0, 'worker-a');
      await advanceLastSlot(db.store, JOB, 'daily', T0 + 100, T0 + 100, 'worker-a');
      await declareSchedule(db.store, decl({ cron: '*/5 * * * *', timezone: 'UTC', args: '[1]', catchUp: '3' }), T0 + 200, 'worker-b');
      await declareSchedule(db.store, decl({ key: 'unknown' }), T0 + 200, 'worker-b');
      expect(await listSchedules(db.store)).to.deep.equal([
        { name: JOB, key: 'daily', cron: '*/5 * * * *', timezone: 'UTC', args: '[1]', catchUp: '3', lastSlot: T0 + 100, updatedAt: T0 + 200, updatedBy: 'worker-b' },
      ]);
    });

    it('advances the last slot forward only, whatever the order of concurrent advances', async () => {
      await registerSchedule(db.store, decl(), T0, 'w0');
      await advanceLastSlot(db.store, JOB, 'daily', T0 + 60_000, T0 + 1, 'w1');
      await advanceLastSlot(db.store, JOB, 'daily', T0 + 30_000, T0 + 2, 'w2'); // back: ignored
      await advanceLastSlot(db.store, JOB, 'daily', T0 + 60_000, T0 + 3, 'w3'); // same: ignored
      expect((await listSchedules(db.store))[0]).to.include({ lastSlot: T0 + 60_000, updatedAt: T0 + 1, updatedBy: 'w1' });
      const slots = Array.from({ length: 12 }, (_, i) => T0 + 100_000 + ((i * 7) % 12) * 1000);
      await Promise.all(slots.map((s, i) => advanceLastSlot(db.store, JOB, 'daily', s, T0 + 10, `r${i}`)));
      expect((await listSchedules(db.store))[0]!.lastSlot).to.equal(Math.max(...slots));
    });

    it('enqueues a slot exactly once when twelve calls race for it (5 rounds), recording the task id on the slot row', async function () {
      this.timeout(30_000);
      for (let round = 0; round < 5; round++) {
        const slot = T0 + round * 60_000;
        const task = () => newTask({ args: '[]', runAt: slot, recurringKey: 'daily' });
        const results = await Promise.all(Array.from({ length: 12 }, () => enqueueSlot(db.store, 'daily', slot, task(), T0)));
        const won = results.filter((r): r is string => r !== null);
        expect(won, `round ${round}`).to.have.length(1);
        const slotRow = (await db.store.knex(db.store.tables.scheduleSlots).where({ name: JOB, key: 'daily', slot })) as Array<{ task_id: unknown }>;
        expect(slotRow.map((r) => String(r.task_id))).to.deep.equal(won);
        expect(await db.store.findPending(won[0]!)).to.include({ runAt: slot, recurringKey: 'daily' });
      }
      expect(await count(db, 'tasks')).to.equal(5);
      expect(await countPendingOfSchedule(db.store, JOB, 'daily')).to.equal(5);
      expect(await enqueueSlot(db.store, 'daily', T0, newTask({ args: '[]', runAt: T0 }), T0)).to.equal(null);
    });

    it('counts pending tasks per schedule, trims old slot rows, and removes one key or all keys of a task (its tasks stay)', async () => {
      await registerSchedule(db.store, decl(), T0, 'w');
      await registerSchedule(db.store, decl({ key: 'hourly' }), T0, 'w');
      await registerSchedule(db.store, decl({ name: OTHER }), T0, 'w');
      await enqueueSlot(db.store, 'daily', T0 + 1, newTask({ runAt: T0 + 1, recurringKey: 'daily' }), T0 - 10_000);
      await enqueueSlot(db.store, 'daily', T0 + 2, newTask({ runAt: T0 + 2, recurringKey: 'daily' }), T0);
      await enqueueSlot(db.store, 'hourly', T0 + 1, newTask({ runAt: T0 + 1, recurringKey: 'hourly' }), T0);
      await enqueueSlot(db.store, 'daily', T0 + 1, newTask({ name: OTHER, runAt: T0 + 1, recurringKey: 'daily' }), T0);
      expect(Object.fromEntries(await pendingBySchedule(db.store))).to.deep.equal({
        [`${JOB}\u0000daily`]: 2,
        [`${JOB}\u0000hourly`]: 1,
        [`${OTHER}\u0000daily`]: 1,
      });
      await trimSlots(db.store, T0 - 1);
      expect(await count(db, 'scheduleSlots')).to.equal(3);

      expect(await removeSchedules(db.store, JOB, 'hourly')).to.equal(1);
      expect((await listSchedules(db.store)).map((s) => `${s.name}/${s.key}`)).to.deep.equal([`${JOB}/daily`, `${OTHER}/daily`]);
      expect(await removeSchedules(db.store, JOB, null)).to.equal(1);
      expect((await listSchedules(db.store)).map((s) => `${s.name}/${s.key}`)).to.deep.equal([`${OTHER}/daily`]);
      const slotsLeft = (await db.store.knex(db.store.tables.scheduleSlots).select('name')) as Array<{ name: string }>;
      expect(slotsLeft.map((r) => r.name)).to.deep.equal([OTHER]);
      expect(await count(db, 'tasks')).to.equal(4);
    });
  });

  describe('tx, retrying and wrap', () => {
    it("runs a transaction on a knex instance passed as the caller's database, rolling it back when the function throws", async () => {
      const err = await db.store
        .tx(async (trx) => {
          await db.store.insertTasks([newTask(), newTask()], trx);
          throw new Error('changed my mind');
        }, db.store.knex)
        .catch((e: unknown) => e);
      expect((err as Error).message).to.equal('changed my mind');
      expect(await count(db, 'tasks')).to.equal(0);
    });

    it('turns a missing table into a NotMigratedError naming the prefix and what to run', async () => {
      const unmigrated = new Store(db.store.conn, 'bgtasks_never_migrated_');
      for (const op of [() => unmigrated.claim(claimReq()), () => unmigrated.insertTasks([newTask()]), () => unmigrated.expiredLeases(T0)]) {
        const err = await op().catch((e: unknown) => e);
        expect(err).to.be.instanceOf(NotMigratedError);
        expect((err as Error).message).to.include('prefix "bgtasks_never_migrated_"').and.include('bgtasks migrate');
      }
    });

    if (db.name !== 'sqlite') {
      it('runs a transaction again when the database chose it as a deadlock victim; both end up committed', async function () {
        this.timeout(20_000);
        const [a, b] = await seed(db, [newTask(), newTask()]);
        // Both transactions hold their first row before either asks for the other's (once).
        let arrived = 0;
        let open!: () => void;
        const gate = new Promise<void>((r) => (open = r));
        const meet = () => {
          if (++arrived === 2) open();
          return gate;
        };
        const runs = { first: 0, second: 0 };
        const cross = (name: 'first' | 'second', one: string, other: string, priority: number) =>
          db.store.tx(async (trx) => {
            runs[name]++;
            await trx(db.store.tables.tasks).where('id', one).update({ priority });
            await meet();
            await trx(db.store.tables.tasks).where('id', other).update({ priority });
          });
        await Promise.all([cross('first', a!, b!, 1), cross('second', b!, a!, 2)]);
        expect(runs.first + runs.second, JSON.stringify(runs)).to.equal(3);
        const victim = runs.first === 2 ? 1 : 2;
        expect((await pendingRows(db)).map((t) => t.priority)).to.deep.equal([victim, victim]);
      });
    }
  });

  describe('taskDetail', () => {
    it('shows a claim under an expired lease as READY with no worker, lease or start time, and a live one as RUNNING with them', async () => {
      const [id] = await seed(db, [newTask()]);
      const t = await claimOne(db, id!, { workerId: 'worker-x' });
      const running = await taskDetail(db.store, id!, T0 + 1);
      expect(running).to.include({ status: 'RUNNING', workerId: 'worker-x', attempts: 1 });
      expect(running.leaseUntil!.getTime()).to.equal(t.lockedUntil);
      expect(running.startedAt!.getTime()).to.equal(T0);
      const ready = await taskDetail(db.store, id!, t.lockedUntil!);
      expect(ready).to.include({ status: 'READY', workerId: null, leaseUntil: null, startedAt: null, attempts: 1 });
    });

    it('shows a finished task with its parsed return value or its errors, and refuses an unknown id', async () => {
      const ok = await finished(false, T0 - 10);
      const failed = await finished(true, T0 - 20);
      const s = await taskDetail(db.store, ok, T0);
      expect(s).to.include({ status: 'SUCCESSFUL', returnValue: 'ok', workerId: 'worker-a', attempts: 1 });
      expect(s.finishedAt!.getTime()).to.equal(T0 - 10);
      expect(s.startedAt!.getTime()).to.equal(T0 - 15);
      const f = await taskDetail(db.store, failed, T0);
      expect(f).to.include({ status: 'FAILED', returnValue: null });
      expect(f.failedAt!.getTime()).to.equal(T0 - 20);
      expect(f.errors!.map((e) => [e.exceptionClass, e.message, e.attempt, e.at.getTime(), e.workerId])).to.deep.equal([['Error', 'no', 1, T0 - 20, 'worker-a']]);
      expect(await taskDetail(db.store, '987654321', T0).catch((e: unknown) => e)).to.be.instanceOf(TaskNotFoundError);
    });
  });
});

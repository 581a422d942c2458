/**
 * Store conformance: inserting tasks (Store.insertTasks, store/enqueue.ts insertCall and
 * insertCalls) on every database. Ids come back in input order whatever the dialect's chunking;
 * a caller's transaction holds everything; each dedupe action leaves the rows it promises; a full
 * queue stores nothing; text comes back byte for byte through every insert path.
 */
import { expect } from 'chai';
import { QueueFullError } from '../../../core/errors.js';
import { insertCall, insertCalls, type EnqueuePlan } from '../../../core/store/enqueue.js';
import { uniformRows, type UniformRows } from '../../../core/store/dialects/insert-rows.js';
import { newTaskRow, type NewTask } from '../../../core/store/rows.js';
import type { TaskRow } from '../../../core/types.js';
import { contract } from '../../helpers/databases.js';
import { AWKWARD, claimOne, count, JOB, newTask, pendingRows, T0 } from '../../helpers/store-fixtures.js';

const plan = (extra: Partial<EnqueuePlan> = {}): EnqueuePlan => ({ action: 'schedule', matchQueue: undefined, queueLimit: undefined, ...extra });
const rowsOf = (tasks: NewTask[]): UniformRows => uniformRows(tasks.map(newTaskRow));

/** The fields a new task sets, as they read back from a pending row. */
function asStored(t: NewTask): Partial<TaskRow> {
  return {
    name: t.name,
    args: t.args,
    hash: t.hash,
    queue: t.queue,
    priority: t.priority,
    verboseName: t.verboseName,
    creatorType: t.creatorType,
    creatorId: t.creatorId,
    runAt: t.runAt,
    scheduledAt: t.scheduledAt,
    enqueuedAt: t.enqueuedAt,
    maxAttempts: t.maxAttempts,
    maxRunTime: t.maxRunTime,
    expiresAt: t.expiresAt,
    repeatEvery: t.repeatEvery,
    repeatCron: t.repeatCron,
    timezone: t.timezone,
    repeatUntil: t.repeatUntil,
    repeatOnFailure: t.repeatOnFailure,
    recurringKey: t.recurringKey,
    concurrencyKey: t.concurrencyKey,
    traceContext: t.traceContext,
    idempotencyKey: t.idempotencyKey,
  };
}

/** What a freshly inserted row holds besides what the task set. */
const FRESH = { attempts: 0, snoozes: 0, lastError: null, errors: [], errorsUnreadable: null, lockedBy: null, claimToken: null, lockedAt: null, lockedUntil: null, cancelRequested: false };

contract('store: insert', (db) => {
  beforeEach(() => db.reset());

  describe('insertTasks', () => {
    it('stores one task and returns its id; the row reads back with every field set and nothing else', async () => {
      const t = newTask({
        queue: 'mail',
        priority: -3,
        verboseName: 'Send one mail',
        creatorType: 'user',
        creatorId: '42',
        scheduledAt: T0 - 5,
        maxAttempts: 4,
        maxRunTime: 2.5,
        expiresAt: T0 + 60_000,
        repeatEvery: 3600,
        repeatUntil: T0 + 86_400_000,
        repeatOnFailure: false,
        recurringKey: 'k1',
        traceContext: '{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}',
      });
      const ids = await db.store.insertTasks([t]);
      expect(ids).to.have.length(1);
      expect(ids[0]).to.match(/^\d+$/);
      const row = await db.store.findPending(ids[0]!);
      expect(row).to.deep.equal({ id: ids[0], ...asStored(t), ...FRESH });
    });

    it('gives a sparse task the column defaults: no queue, priority 0, no recurrence, repeatOnFailure true', async () => {
      const t = newTask();
      const [id] = await db.store.insertTasks([t]);
      const row = (await db.store.findPending(id!))!;
      expect(row).to.include({ queue: null, priority: 0, repeatEvery: 0, repeatCron: null, maxAttempts: null, maxRunTime: null, repeatOnFailure: true });
      expect(row).to.deep.equal({ id, ...asStored(t), ...FRESH });
    });

    for (const n of [2, 400, 401, 5000, 5001]) {
      it(`returns the ids of ${n} rows in input order, each id naming the row given at its position`, async function () {
        this.timeout(30_000);
        const tasks = Array.from({ length: n }, (_, i) => newTask({ args: JSON.stringify([i, 'row']), priority: i % 7 }));
        const ids = await db.store.insertTasks(tasks);
        expect(ids).to.have.length(n);
        expect(new Set(ids).size).to.equal(n);
        const stored = (await db.store.knex(db.store.tables.tasks).select('id', 'args', 'priority')) as Array<{ id: unknown; args: string; priority: unknown }>;
        expect(stored).to.have.length(n);
        const byId = new Map(stored.map((r) => [String(r.id), r]));
        ids.forEach((id, i) => {
          const r = byId.get(id);
          expect(r, `id ${id} at position ${i}`).to.not.equal(undefined);
          expect(r!.args).to.equal(JSON.stringify([i, 'row']));
          expect(Number(r!.priority)).to.equal(i % 7);
        });
      });
    }

    it('stores a bulk of rows that share every column but their arguments, and rows identical in every column', async () => {
      const shared = { queue: 'bulk', priority: 5, verboseName: 'shared', creatorType: 'team', creatorId: '7', maxAttempts: 3, runAt: T0 + 1000, enqueuedAt: T0 };
      const varying = Array.from({ length: 50 }, (_, i) => newTask({ ...shared, args: `[${i}]` }));
      const ids = await db.store.insertTasks(rowsOf(varying));
      // No column varies at all: the statement has no per-row value to read.
      const same = newTask({ ...shared, args: '["same"]' });
      const sameIds = await db.store.insertTasks(rowsOf([same, same, same]));
      expect(new Set([...ids, ...sameIds]).size).to.equal(53);
      for (const [i, id] of ids.entries()) expect(await db.store.findPending(id)).to.deep.equal({ id, ...asStored(varying[i]!), ...FRESH });
      for (const id of sameIds) expect(await db.store.findPending(id)).to.deep.equal({ id, ...asStored(same), ...FRESH });
    });

    it('fills the columns a row of a mixed batch leaves out with their defaults, and keeps nulls, booleans and extremes per row', async () => {
      const full = newTask({ queue: 'q', priority: 2_147_483_647, maxAttempts: 9, maxRunTime: 0.001, repeatCron: '*/5 * * * *', timezone: 'Asia/Kathmandu', repeatOnFailure: false, recurringKey: 'r' });
      const sparse = newTask({ priority: -2_147_483_648 });
      const far = newTask({ runAt: 8_640_000_000_000_000, expiresAt: 8_640_000_000_000_000, repeatUntil: 1 });
      const tasks = [full, sparse, far, newTask({ verboseName: '' })];
      const ids = await db.store.insertTasks(tasks);
      for (const [i, id] of ids.entries()) expect(await db.store.findPending(id), `row ${i}`).to.deep.equal({ id, ...asStored(tasks[i]!), ...FRESH });
    });

    it("writes in the caller's transaction: visible inside it, gone when it rolls back, kept when it commits", async () => {
      const trx = await db.store.knex.transaction();
      const ids = [...(await db.store.insertTasks([newTask()], trx)), ...(await db.store.insertTasks([newTask(), newTask()], trx))];
      const [inside] = (await trx(db.store.tables.tasks).count({ n: '*' })) as Array<{ n: unknown }>;
      expect(Number(inside!.n)).to.equal(3);
      await trx.rollback();
      expect(await count(db, 'tasks')).to.equal(0);
      for (const id of ids) expect(await db.store.findPending(id)).to.equal(null);

      const ok = await db.store.knex.transaction();
      const kept = await db.store.insertTasks([newTask(), newTask()], ok);
      await ok.commit();
      expect((await pendingRows(db)).map((r) => r.id)).to.deep.equal(kept);
    });
  });

  describe('insertCall: dedupe actions', () => {
    it("'schedule' inserts every call, twins included, and reports each as created", async () => {
      const t = newTask({ args: '["twin"]' });
      const a = await insertCall(db.store, t, plan(), T0);
      const b = await insertCall(db.store, t, plan(), T0);
      expect([a.outcome, b.outcome]).to.deep.equal(['created', 'created']);
      expect(a.id).to.not.equal(b.id);
      expect(a.runAt).to.equal(T0);
      expect(await count(db, 'tasks')).to.equal(2);
    });

    it("'checkExisting' answers with the oldest unclaimed twin (its id and run time) and writes nothing; a claimed twin does not count", async () => {
      const [claimedTwin] = await db.store.insertTasks([newTask({ args: '["x"]', runAt: T0 - 10 })]);
      await claimOne(db, claimedTwin!);
      const [first, second] = await db.store.insertTasks([newTask({ args: '["x"]', runAt: T0 + 100 }), newTask({ args: '["x"]', runAt: T0 + 50 })]);
      const other = newTask({ args: '["y"]' });
      await db.store.insertTasks([other]);
      const before = await pendingRows(db);

      const r = await insertCall(db.store, newTask({ args: '["x"]', runAt: T0 + 999, priority: 9 }), plan({ action: 'checkExisting' }), T0);
      expect(r).to.deep.equal({ id: first, runAt: T0 + 100, outcome: 'existing' });
      expect(await pendingRows(db)).to.deep.equal(before);
      expect(second).to.not.equal(undefined);

      // Only the claimed twin left: the call is inserted.
      await db.store.knex(db.store.tables.tasks).whereIn('id', [first!, second!]).del();
      const c = await insertCall(db.store, newTask({ args: '["x"]', runAt: T0 + 999 }), plan({ action: 'checkExisting' }), T0);
      expect(c.outcome).to.equal('created');
      expect(c.id).to.not.equal(claimedTwin);
      expect((await db.store.findPending(c.id))!.runAt).to.equal(T0 + 999);
    });

    it("a task whose hash shares all but the last character with the call's is no twin: the whole hash is compared (MySQL's index holds 8 characters, migration 012)", async () => {
      const call = newTask({ args: '["near"]' });
      const near = `${call.hash.slice(0, 39)}${call.hash.endsWith('0') ? '1' : '0'}`;
      const [lookalike] = await db.store.insertTasks([newTask({ args: '["near"]', hash: near })]);
      const r = await insertCall(db.store, call, plan({ action: 'checkExisting' }), T0);
      expect(r.outcome).to.equal('created');
      expect(r.id).to.not.equal(lookalike);
      const again = await insertCall(db.store, newTask({ args: '["near"]' }), plan({ action: 'checkExisting' }), T0);
      expect(again).to.deep.include({ id: r.id, outcome: 'existing' });
      if (db.name === 'mysql') {
        const [rows] = (await db.store.knex.raw('SELECT SUB_PART AS part FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?', [
          db.store.tables.tasks,
          `${db.store.tables.tasks}_hash`,
        ])) as [Array<{ part: unknown }>];
        expect(rows.map((x) => Number(x.part))).to.deep.equal([8]);
      }
    });

    it("'checkExisting' matches a twin in the queue given: a name, null for no queue, undefined for any queue", async () => {
      const [inA] = await db.store.insertTasks([newTask({ args: '["q"]', queue: 'a' })]);
      const call = newTask({ args: '["q"]', queue: 'b' });
      const inB = await insertCall(db.store, call, plan({ action: 'checkExisting', matchQueue: 'b' }), T0);
      expect(inB.outcome).to.equal('created');
      const none = await insertCall(db.store, { ...call, queue: null }, plan({ action: 'checkExisting', matchQueue: null }), T0);
      expect(none.outcome).to.equal('created');
      const again = await insertCall(db.store, { ...call, queue: null }, plan({ action: 'checkExisting', matchQueue: null }), T0);
      expect(again).to.include({ id: none.id, outcome: 'existing' });
      const any = await insertCall(db.store, call, plan({ action: 'checkExisting', matchQueue: undefined }), T0);
      expect(any).to.include({ id: inA, outcome: 'existing' });
      const exactA = await insertCall(db.store, call, plan({ action: 'checkExisting', matchQueue: 'a' }), T0);
      expect(exactA).to.include({ id: inA, outcome: 'existing' });
      expect(await count(db, 'tasks')).to.equal(3);
    });

    it("'rescheduleExisting' moves every unclaimed twin to the new run time and priority, leaves a claimed twin and other calls alone, inserts nothing", async () => {
      const [claimedTwin] = await db.store.insertTasks([newTask({ args: '["r"]', runAt: T0 - 10 })]);
      const held = await claimOne(db, claimedTwin!);
      const [a, b, other] = await db.store.insertTasks([
        newTask({ args: '["r"]', runAt: T0 + 10, priority: 1 }),
        newTask({ args: '["r"]', runAt: T0 + 20, priority: 2 }),
        newTask({ args: '["s"]', runAt: T0 + 30, priority: 3 }),
      ]);
      const otherBefore = await db.store.findPending(other!);

      const r = await insertCall(db.store, newTask({ args: '["r"]', runAt: T0 + 5000, priority: 8 }), plan({ action: 'rescheduleExisting' }), T0);
      expect(r).to.deep.equal({ id: a, runAt: T0 + 5000, outcome: 'rescheduled' });
      for (const id of [a!, b!]) expect(await db.store.findPending(id)).to.include({ runAt: T0 + 5000, scheduledAt: T0 + 5000, priority: 8, lockedBy: null });
      expect(await db.store.findPending(claimedTwin!)).to.deep.equal(held);
      expect(await db.store.findPending(other!)).to.deep.equal(otherBefore);
      expect(await count(db, 'tasks')).to.equal(4);
    });

    it("'replaceExisting' deletes every unclaimed twin in any queue, keeps a claimed one and other calls, then inserts the call ('replaced'; 'created' without twins)", async () => {
      const [claimedTwin] = await db.store.insertTasks([newTask({ args: '["p"]', runAt: T0 - 10 })]);
      await claimOne(db, claimedTwin!);
      const [inA, inNone, other] = await db.store.insertTasks([newTask({ args: '["p"]', queue: 'a' }), newTask({ args: '["p"]' }), newTask({ args: '["o"]' })]);

      const r = await insertCall(db.store, newTask({ args: '["p"]', queue: 'b', runAt: T0 + 7 }), plan({ action: 'replaceExisting', matchQueue: 'b' }), T0);
      expect(r.outcome).to.equal('replaced');
      expect(r.runAt).to.equal(T0 + 7);
      expect(await db.store.findPending(inA!)).to.equal(null);
      expect(await db.store.findPending(inNone!)).to.equal(null);
      expect(await db.store.findPending(claimedTwin!)).to.not.equal(null);
      expect(await db.store.findPending(other!)).to.not.equal(null);
      expect(await db.store.findPending(r.id)).to.include({ queue: 'b', runAt: T0 + 7 });

      const fresh = await insertCall(db.store, newTask({ args: '["new"]' }), plan({ action: 'replaceExisting' }), T0);
      expect(fresh.outcome).to.equal('created');
      expect(await count(db, 'tasks')).to.equal(4);
    });

    it("runs a dedupe action inside the caller's transaction: rolled back, neither the insert nor the twin's change stays", async () => {
      const [twin] = await db.store.insertTasks([newTask({ args: '["t"]', runAt: T0 + 1 })]);
      const before = await db.store.findPending(twin!);
      for (const action of ['rescheduleExisting', 'replaceExisting', 'checkExisting'] as const) {
        const trx = await db.store.knex.transaction();
        await insertCall(db.store, newTask({ args: '["t"]', runAt: T0 + 500 }), plan({ action, db: trx }), T0);
        await insertCall(db.store, newTask({ args: '["u"]' }), plan({ action, db: trx }), T0);
        await trx.rollback();
        expect(await pendingRows(db), action).to.deep.equal([before]);
        expect(await count(db, 'locks'), action).to.equal(0);
      }
    });
  });

  describe('queue size limits', () => {
    it('refuses a call into a full queue with a QueueFullError naming the queue, its count and limit, and stores nothing', async () => {
      await db.store.insertTasks([newTask({ queue: 'small' }), newTask({ queue: 'small' })]);
      const err = await insertCall(db.store, newTask({ queue: 'small' }), plan({ queueLimit: 2 }), T0).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(QueueFullError);
      expect((err as Error).message).to.include('"small"').and.include('2 pending').and.include('maxQueueSize is 2');
      expect(await count(db, 'tasks')).to.equal(2);
      // One place left: taken.
      const r = await insertCall(db.store, newTask({ queue: 'small' }), plan({ queueLimit: 3 }), T0);
      expect(r.outcome).to.equal('created');
      expect(await count(db, 'tasks')).to.equal(3);
    });

    it("counts the queue's claimed tasks too, and no other queue's (nor tasks without a queue)", async () => {
      const [running] = await db.store.insertTasks([newTask({ queue: 'q', runAt: T0 - 1 })]);
      await claimOne(db, running!);
      await db.store.insertTasks([newTask({ queue: 'other' }), newTask({ queue: 'other' }), newTask()]);
      await insertCall(db.store, newTask({ queue: 'q' }), plan({ queueLimit: 2 }), T0);
      const err = await insertCall(db.store, newTask({ queue: 'q' }), plan({ queueLimit: 2 }), T0).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(QueueFullError);
      expect(await count(db, 'tasks')).to.equal(5);
    });

    it('sets no limit for a task without a queue', async () => {
      await db.store.insertTasks([newTask(), newTask()]);
      const r = await insertCall(db.store, newTask(), plan({ queueLimit: 1 }), T0);
      expect(r.outcome).to.equal('created');
      expect(await count(db, 'tasks')).to.equal(3);
    });

    it("rolls back a 'replaceExisting' twin's deletion when the queue turns out to be full", async () => {
      const [twin] = await db.store.insertTasks([newTask({ args: '["z"]', queue: 'other' })]);
      await db.store.insertTasks([newTask({ queue: 'full' })]);
      const err = await insertCall(db.store, newTask({ args: '["z"]', queue: 'full' }), plan({ action: 'replaceExisting', queueLimit: 1 }), T0).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(QueueFullError);
      expect(await db.store.findPending(twin!)).to.not.equal(null);
      expect(await count(db, 'tasks')).to.equal(2);
    });

    it('refuses a batch that would overfill the queue (none of it stored) and stores one that fills it exactly', async () => {
      await db.store.insertTasks([newTask({ queue: 'b' }), newTask({ queue: 'b' }), newTask({ queue: 'b' })]);
      const batch = (n: number) => rowsOf(Array.from({ length: n }, () => newTask({ queue: 'b' })));
      const err = await insertCalls(db.store, batch(3), 'b', { queueLimit: 5 }, T0).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(QueueFullError);
      expect((err as Error).message).to.include('"b"').and.include('3 pending').and.include('maxQueueSize is 5');
      expect(await count(db, 'tasks')).to.equal(3);
      const ids = await insertCalls(db.store, batch(2), 'b', { queueLimit: 5 }, T0);
      expect(ids).to.have.length(2);
      expect(await count(db, 'tasks')).to.equal(5);
      // Without a queue, the limit is not consulted.
      expect(await insertCalls(db.store, rowsOf([newTask(), newTask()]), null, { queueLimit: 1 }, T0)).to.have.length(2);
    });

    it("checks the limit inside the caller's transaction and stores nothing when it rolls back", async () => {
      const trx = await db.store.knex.transaction();
      const ids = await insertCalls(db.store, rowsOf([newTask({ queue: 'c' }), newTask({ queue: 'c' })]), 'c', { queueLimit: 2, db: trx }, T0);
      expect(ids).to.have.length(2);
      const err = await insertCall(db.store, newTask({ queue: 'c' }), plan({ queueLimit: 2, db: trx }), T0).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(QueueFullError);
      await trx.rollback();
      expect(await count(db, 'tasks')).to.equal(0);
    });
  });

  describe('text round trips', () => {
    const long = 'x'.repeat(100_000) + AWKWARD + 'é'.repeat(50_000);
    const textTask = (i: number, extra: Partial<NewTask> = {}) =>
      newTask({
        args: JSON.stringify([AWKWARD, i, { long: i === 0 ? long : '', nested: ['a"b', "c'd", '\\u0041'] }]),
        queue: `q ${AWKWARD.slice(0, 30)}`,
        verboseName: `${i}: ${AWKWARD}`,
        creatorType: 'it\'s "me"',
        creatorId: `id\n${i}`,
        repeatCron: '0 9 * * 1-5',
        timezone: 'America/Argentina/Buenos_Aires',
        recurringKey: `key ${AWKWARD.slice(0, 40)}`,
        ...extra,
      });

    it('keeps quotes, backslashes, newlines, control and non-ASCII characters and long text exactly, through a single and a multi-row insert', async () => {
      const one = textTask(0);
      const [id] = await db.store.insertTasks([one]);
      expect(await db.store.findPending(id!)).to.deep.equal({ id, ...asStored(one), ...FRESH });
      const many = [textTask(0), textTask(1), textTask(2, { verboseName: 'null' }), textTask(3, { verboseName: '007', creatorId: '1e3' }), textTask(4, { creatorId: 'true' })];
      const ids = await db.store.insertTasks(many);
      for (const [i, mid] of ids.entries()) expect(await db.store.findPending(mid), `row ${i}`).to.deep.equal({ id: mid, ...asStored(many[i]!), ...FRESH });
    });

    it('keeps text exactly through a bulk of calls (insertCalls) and through a claim', async () => {
      const many = Array.from({ length: 20 }, (_, i) => textTask(i, { runAt: T0 - 1 }));
      const ids = await insertCalls(db.store, rowsOf(many), many[0]!.queue, { queueLimit: 100 }, T0);
      for (const [i, id] of ids.entries()) expect(await db.store.findPending(id), `row ${i}`).to.deep.equal({ id, ...asStored(many[i]!), ...FRESH });
      const claimed = await db.store.claim({ names: [JOB], queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w', nowMs: T0, leaseMs: 1000, limit: 100 });
      expect(claimed).to.have.length(20);
      for (const row of claimed) {
        const i = ids.indexOf(row.id);
        expect(row, `row ${i}`).to.deep.include(asStored(many[i]!));
      }
    });
  });
});

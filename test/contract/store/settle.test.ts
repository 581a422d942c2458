/**
 * Store conformance: settling attempts (Store.completeMany, retry, fail, release, failReady) on
 * every database. Each write is fenced by the claim token: a settle whose claim is gone reports
 * it and writes nothing, neither the completed row nor a recurring task's successor.
 */
import { expect } from 'chai';
import { Store } from '../../../core/store/store.js';
import type { CompletedRow, TaskRow } from '../../../core/types.js';
import { contract } from '../../helpers/databases.js';
import { AWKWARD, claimOne, claimReq, completedRow, count, errorAt, LEASE_MS, newTask, pendingRows, seed, success, T0 } from '../../helpers/store-fixtures.js';

/** The completed row a task should leave, from its claimed row and how it finished. */
function finishedAs(t: TaskRow, f: Pick<CompletedRow, 'finishedAt' | 'failedAt' | 'returnValue' | 'attempts' | 'lastError' | 'errors'>): CompletedRow {
  return {
    taskId: t.id,
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
    repeatEvery: t.repeatEvery,
    repeatCron: t.repeatCron,
    timezone: t.timezone,
    repeatUntil: t.repeatUntil,
    recurringKey: t.recurringKey,
    concurrencyKey: t.concurrencyKey,
    snoozes: t.snoozes,
    startedAt: t.lockedAt,
    workerId: t.lockedBy,
    errorsUnreadable: null,
    traceContext: t.traceContext,
    idempotencyKey: t.idempotencyKey,
    ...f,
  };
}

contract('store: settle', (db) => {
  beforeEach(() => db.reset());

  /** Claims `n` fresh tasks (worker-a, at T0). */
  async function claimed(n: number, extra: Parameters<typeof newTask>[0] = {}): Promise<TaskRow[]> {
    await seed(db, Array.from({ length: n }, () => newTask({ queue: 'settle', verboseName: 'v', creatorType: 'user', creatorId: '9', ...extra })));
    const rows = await db.store.claim(claimReq({ limit: n }));
    expect(rows).to.have.length(n);
    return rows;
  }

  /** Replaces a claim by another one (as if its lease had been recovered and the task claimed again). */
  async function takeOver(t: TaskRow): Promise<TaskRow> {
    expect(await db.store.release([t])).to.equal(1);
    return claimOne(db, t.id, { workerId: 'worker-b', nowMs: T0 + 1 });
  }

  describe('completeMany', () => {
    it('moves each success to the completed table with its return value, finish time, start time and worker, and deletes the pending row', async () => {
      const [a, b, untouched] = await claimed(3);
      const r = await db.store.completeMany([success(a!, T0 + 100, '{"ok":1}'), success(b!, T0 + 200, null)], T0 + 300);
      expect(r.done.map((c) => c.task.id)).to.deep.equal([a!.id, b!.id]);
      expect(r.lost).to.deep.equal([]);
      expect(await completedRow(db, a!.id)).to.deep.equal(finishedAs(a!, { finishedAt: T0 + 100, failedAt: null, returnValue: '{"ok":1}', attempts: 1, lastError: null, errors: [] }));
      expect(await completedRow(db, b!.id)).to.deep.equal(finishedAs(b!, { finishedAt: T0 + 200, failedAt: null, returnValue: null, attempts: 1, lastError: null, errors: [] }));
      expect((await pendingRows(db)).map((t) => t.id)).to.deep.equal([untouched!.id]);
    });

    it('keeps the error history of earlier attempts and an awkward or large return value exactly', async () => {
      const [t] = await claimed(1);
      const history = [errorAt('first', 1, T0 - 50)];
      await db.store.knex(db.store.tables.tasks).where('id', t!.id).update({ last_error: history[0]!.stack, errors: JSON.stringify(history) });
      const row = (await db.store.findPending(t!.id))!;
      const value = JSON.stringify({ text: AWKWARD, big: 'y'.repeat(200_000) });
      await db.store.completeMany([success(row, T0 + 1, value)], T0 + 1);
      const done = await completedRow(db, t!.id);
      expect(done.returnValue).to.equal(value);
      expect(done.errors).to.deep.equal(history);
      expect(done.lastError).to.equal(history[0]!.stack);
    });

    it('reports a success whose claim token no longer matches as lost and writes nothing for it', async () => {
      const [a, b, c] = await claimed(3);
      const bNow = await takeOver(b!);
      const r = await db.store.completeMany([success(a!, T0 + 5, '1'), success(b!, T0 + 5, '2'), success(c!, T0 + 5, '3')], T0 + 5);
      expect(r.done.map((x) => x.task.id)).to.deep.equal([a!.id, c!.id]);
      expect(r.lost.map((x) => x.task.id)).to.deep.equal([b!.id]);
      expect(await db.store.findCompleted(b!.id)).to.equal(null);
      expect(await db.store.findPending(b!.id)).to.deep.equal(bNow);
      expect(await count(db, 'completed')).to.equal(2);
    });

    it('reports a success whose row was deleted as lost', async () => {
      const [a] = await claimed(1);
      await db.store.knex(db.store.tables.tasks).where('id', a!.id).del();
      const r = await db.store.completeMany([success(a!, T0 + 5, '1')], T0 + 5);
      expect(r).to.deep.equal({ done: [], lost: [success(a!, T0 + 5, '1')], refused: [], unwritten: [], error: null });
      expect(await count(db, 'completed')).to.equal(0);
    });

    it('reports a success written again after its answer was lost (an ambiguous commit) as done, and writes nothing twice; a failure stored for that attempt keeps it lost', async () => {
      const [a, b, c] = await claimed(3, { repeatEvery: 60 });
      expect((await db.store.completeMany([success(a!, T0 + 5, '1'), success(b!, T0 + 5, '2', T0 + 60_000)], T0 + 5)).done).to.have.length(2);
      const again = await db.store.completeMany([success(a!, T0 + 5, '1'), success(b!, T0 + 5, '2', T0 + 60_000)], T0 + 9);
      expect(again).to.deep.equal({ done: [success(a!, T0 + 5, '1'), success(b!, T0 + 5, '2', T0 + 60_000)], lost: [], refused: [], unwritten: [], error: null });
      expect(await count(db, 'completed')).to.equal(2);
      expect((await pendingRows(db)).filter((t) => t.id !== c!.id), 'one successor, not two').to.have.length(1);
      // Another finish time is another write: not this one's.
      expect((await db.store.completeMany([success(a!, T0 + 6, '1')], T0 + 9)).lost).to.have.length(1);
      // Lease recovery failed this attempt: the late success is lost, not done.
      expect(await db.store.fail(c!, { nowMs: T0 + 7, record: errorAt('lease expired', 1, T0 + 7), successorAt: null, attempts: 1 })).to.equal(true);
      expect((await db.store.completeMany([success(c!, T0 + 8, '3')], T0 + 9)).lost).to.have.length(1);
      expect(await count(db, 'completed')).to.equal(3);
    });

    it('inserts the successor of a recurring success at its slot, with a fresh history, in the same write', async () => {
      const [t] = await claimed(1, { repeatEvery: 60, recurringKey: 'every-minute', expiresAt: T0 + 10_000, scheduledAt: T0 - 500 });
      await db.store.knex(db.store.tables.tasks).where('id', t!.id).update({ last_error: 'Error: x', errors: JSON.stringify([errorAt('x', 1, T0 - 1)]) });
      const row = (await db.store.findPending(t!.id))!;
      const r = await db.store.completeMany([success(row, T0 + 10, '"done"', T0 + 59_500)], T0 + 20);
      expect(r.done).to.have.length(1);
      expect((await completedRow(db, t!.id)).returnValue).to.equal('"done"');
      const [next] = await pendingRows(db);
      expect(next!.id).to.not.equal(t!.id);
      expect(next).to.deep.include({
        name: t!.name,
        args: t!.args,
        hash: t!.hash,
        queue: t!.queue,
        priority: t!.priority,
        verboseName: t!.verboseName,
        repeatEvery: 60,
        recurringKey: 'every-minute',
        runAt: T0 + 59_500,
        scheduledAt: T0 + 59_500,
        enqueuedAt: T0 + 20,
        // The expiry window moves with the slot.
        expiresAt: T0 + 59_500 + 10_500,
        attempts: 0,
        lastError: null,
        errors: [],
        lockedBy: null,
        claimToken: null,
      });
    });

    it('inserts no successor for a recurring success whose claim was lost', async () => {
      const [t] = await claimed(1, { repeatEvery: 60 });
      const now = await takeOver(t!);
      const r = await db.store.completeMany([success(t!, T0 + 10, null, T0 + 60_000)], T0 + 10);
      expect(r.lost).to.have.length(1);
      expect(await pendingRows(db)).to.deep.equal([now]);
      expect(await count(db, 'completed')).to.equal(0);
    });

    it('settles a mixed batch of plain and recurring successes, some lost, each as it should', async () => {
      const plain = await claimed(2);
      await seed(db, [newTask({ repeatEvery: 10 }), newTask({ repeatEvery: 10 })]);
      const recurring = await db.store.claim(claimReq());
      expect(recurring).to.have.length(2);
      await takeOver(plain[1]!);
      await takeOver(recurring[1]!);
      const items = [success(plain[0]!, T0 + 1, '1'), success(plain[1]!, T0 + 1, '2'), success(recurring[0]!, T0 + 1, '3', T0 + 10_000), success(recurring[1]!, T0 + 1, '4', T0 + 10_000)];
      const r = await db.store.completeMany(items, T0 + 2);
      expect(r.done.map((c) => c.task.id).sort()).to.deep.equal([plain[0]!.id, recurring[0]!.id].sort());
      expect(r.lost.map((c) => c.task.id).sort()).to.deep.equal([plain[1]!.id, recurring[1]!.id].sort());
      expect(await count(db, 'completed')).to.equal(2);
      // Left: the two taken-over claims and one successor.
      const left = await pendingRows(db);
      expect(left).to.have.length(3);
      expect(left.filter((t) => t.lockedBy === null).map((t) => t.runAt)).to.deep.equal([T0 + 10_000]);
    });

    it('completes more successes than one statement takes (1,001), and answers an empty list with nothing', async function () {
      this.timeout(30_000);
      const rows = await claimed(1001);
      const r = await db.store.completeMany(rows.map((t, i) => success(t, T0 + i, String(i))), T0 + 2000);
      expect(r.done).to.have.length(1001);
      expect(r.lost).to.deep.equal([]);
      expect(await count(db, 'tasks')).to.equal(0);
      expect(await count(db, 'completed')).to.equal(1001);
      expect((await completedRow(db, rows[1000]!.id)).returnValue).to.equal('1000');
      expect(await db.store.completeMany([], T0)).to.deep.equal({ done: [], lost: [], refused: [], unwritten: [], error: null });
    });
  });

  describe('retry', () => {
    it('puts the task back due at the run time given, with its error appended and the lease cleared; the attempt stays counted', async () => {
      const [t] = await claimed(1);
      const rec = errorAt('boom', 1, T0 + 5);
      expect(await db.store.retry(t!, T0 + 60_000, rec)).to.equal('ok');
      expect(await db.store.findPending(t!.id)).to.deep.equal({
        ...t!,
        runAt: T0 + 60_000,
        lockedBy: null,
        claimToken: null,
        lockedAt: null,
        lockedUntil: null,
        lastError: rec.stack,
        errors: [rec],
      });
    });

    it('keeps only the newest errorsKept records', async () => {
      const store = new Store(db.store.conn, db.settings.tablePrefix, 3);
      const [t] = await claimed(1);
      let row = t!;
      for (let i = 1; i <= 5; i++) {
        expect(await store.retry(row, T0, errorAt(`e${i}`, i, T0 + i))).to.equal('ok');
        row = await claimOne(db, t!.id, { nowMs: T0 + i });
      }
      expect(row.errors.map((e) => e.message)).to.deep.equal(['e3', 'e4', 'e5']);
      expect(row.lastError).to.equal(errorAt('e5', 5, 0).stack);
    });

    it("answers 'cancelled' and writes nothing when a cancel was requested meanwhile", async () => {
      const [t] = await claimed(1);
      await db.store.requestCancel(t!);
      const before = await db.store.findPending(t!.id);
      expect(await db.store.retry(t!, T0 + 1000, errorAt('boom', 1, T0))).to.equal('cancelled');
      expect(await db.store.findPending(t!.id)).to.deep.equal(before);
    });

    it("answers 'lost' and writes nothing when the claim was replaced or the row deleted", async () => {
      const [a, b] = await claimed(2);
      const now = await takeOver(a!);
      expect(await db.store.retry(a!, T0 + 1000, errorAt('late', 1, T0))).to.equal('lost');
      expect(await db.store.findPending(a!.id)).to.deep.equal(now);
      await db.store.knex(db.store.tables.tasks).where('id', b!.id).del();
      expect(await db.store.retry(b!, T0 + 1000, errorAt('late', 1, T0))).to.equal('lost');
      expect(await db.store.findPending(b!.id)).to.equal(null);
    });
  });

  describe('fail', () => {
    it('moves the task to the completed table as failed, with the attempts given (not the row\'s) and its error', async () => {
      const [t] = await claimed(1);
      const rec = errorAt('fatal', 1, T0 + 9);
      expect(await db.store.fail(t!, { nowMs: T0 + 9, record: rec, successorAt: null, attempts: 0 })).to.equal(true);
      expect(await db.store.findPending(t!.id)).to.equal(null);
      expect(await completedRow(db, t!.id)).to.deep.equal(finishedAs(t!, { finishedAt: T0 + 9, failedAt: T0 + 9, returnValue: null, attempts: 0, lastError: rec.stack, errors: [rec] }));
      expect(await count(db, 'tasks')).to.equal(0);
    });

    it("inserts a recurring task's successor when one is given, and none when it is null", async () => {
      const [a, b] = await claimed(2, { repeatEvery: 30 });
      expect(await db.store.fail(a!, { nowMs: T0 + 1, record: errorAt('x', 1, T0 + 1), successorAt: T0 + 30_000, attempts: 1 })).to.equal(true);
      expect(await db.store.fail(b!, { nowMs: T0 + 1, record: errorAt('x', 1, T0 + 1), successorAt: null, attempts: 1 })).to.equal(true);
      const left = await pendingRows(db);
      expect(left).to.have.length(1);
      expect(left[0]).to.deep.include({ args: a!.args, runAt: T0 + 30_000, scheduledAt: T0 + 30_000, attempts: 0, errors: [], lockedBy: null });
    });

    it('returns false and writes nothing (no completed row, no successor) when the claim was replaced', async () => {
      const [t] = await claimed(1, { repeatEvery: 30 });
      const now = await takeOver(t!);
      expect(await db.store.fail(t!, { nowMs: T0 + 1, record: errorAt('x', 1, T0 + 1), successorAt: T0 + 30_000, attempts: 1 })).to.equal(false);
      expect(await pendingRows(db)).to.deep.equal([now]);
      expect(await count(db, 'completed')).to.equal(0);
    });

    it('with expiredLeaseBefore, fails only a lease that ran out strictly before that time', async () => {
      const [t] = await claimed(1);
      const until = T0 + LEASE_MS;
      const rec = errorAt('lost', 1, until);
      expect(await db.store.fail(t!, { nowMs: until, record: rec, successorAt: null, attempts: 1, expiredLeaseBefore: until })).to.equal(false);
      expect(await db.store.findPending(t!.id)).to.deep.equal(t);
      expect(await db.store.fail(t!, { nowMs: until + 1, record: rec, successorAt: null, attempts: 1, expiredLeaseBefore: until + 1 })).to.equal(true);
      expect((await completedRow(db, t!.id)).failedAt).to.equal(until + 1);
    });
  });

  describe('release', () => {
    it('gives claimed tasks back ready at once with their attempt returned and the lease cleared; returns how many', async () => {
      await seed(db, [newTask({ runAt: T0 - 10 }), newTask({ runAt: T0 - 10 }), newTask({ runAt: T0 - 10 })]);
      await db.store.knex(db.store.tables.tasks).update({ attempts: 4 });
      const [a, b, c] = await db.store.claim(claimReq());
      expect(a!.attempts).to.equal(5);
      expect(await db.store.release([a!, b!])).to.equal(2);
      for (const t of [a!, b!]) {
        expect(await db.store.findPending(t.id)).to.deep.equal({ ...t, attempts: 4, lockedBy: null, claimToken: null, lockedAt: null, lockedUntil: null });
      }
      expect(await db.store.findPending(c!.id)).to.deep.equal(c);
      // Ready at once: the same instant's claim takes them.
      expect((await db.store.claim(claimReq({ workerId: 'worker-b' }))).map((t) => t.id)).to.deep.equal([a!.id, b!.id]);
    });

    it('releases nothing for a replaced claim or an empty list, and never takes attempts below 0', async () => {
      const [a, b] = await claimed(2);
      const now = await takeOver(a!);
      expect(await db.store.release([a!])).to.equal(0);
      expect(await db.store.findPending(a!.id)).to.deep.equal(now);
      expect(await db.store.release([])).to.equal(0);
      await db.store.knex(db.store.tables.tasks).where('id', b!.id).update({ attempts: 0 });
      expect(await db.store.release([b!])).to.equal(1);
      expect((await db.store.findPending(b!.id))!.attempts).to.equal(0);
    });
  });

  describe('failReady', () => {
    it('fails an unclaimed task for good: completed row with the error, its attempts, no worker, no start time', async () => {
      const [id] = await seed(db, [newTask({ queue: 'r', repeatEvery: 60 })]);
      const t = (await db.store.findPending(id!))!;
      const rec = errorAt('cancelled', 0, T0 + 3, null);
      expect(await db.store.failReady(t, T0 + 3, rec)).to.equal(true);
      expect(await completedRow(db, id!)).to.deep.equal(finishedAs(t, { finishedAt: T0 + 3, failedAt: T0 + 3, returnValue: null, attempts: 0, lastError: rec.stack, errors: [rec] }));
      // A recurring task's chain ends here: no successor.
      expect(await count(db, 'tasks')).to.equal(0);
    });

    it('returns false and writes nothing for a task claimed meanwhile (even under an expired lease)', async () => {
      const [id] = await seed(db, [newTask({ runAt: T0 - 20 * LEASE_MS })]);
      const ready = (await db.store.findPending(id!))!;
      const c = await claimOne(db, id!, { nowMs: T0 - 10 * LEASE_MS });
      expect(await db.store.failReady(ready, T0, errorAt('x', 0, T0, null))).to.equal(false);
      expect(await db.store.findPending(id!)).to.deep.equal(c);
      expect(await count(db, 'completed')).to.equal(0);
    });
  });
});

/**
 * Store conformance: recovering the tasks of dead workers (Store.expiredLeases, recoverLease, and
 * fail fenced by `expiredLeaseBefore`) on every database. Only claims whose lease ran out are
 * listed, oldest first; a recovery write refuses a lease its worker renewed in the meantime. A
 * recovered task is READY but keeps its claim token: its worker's late settle still lands until
 * another worker claims it, and is refused after that.
 */
import { expect } from 'chai';
import type { TaskRow } from '../../../core/types.js';
import { contract } from '../../helpers/databases.js';
import { claimOne, claimReq, count, errorAt, LEASE_MS, newTask, pendingRows, seed, success, T0 } from '../../helpers/store-fixtures.js';

contract('store: recover', (db) => {
  beforeEach(() => db.reset());

  /** A task claimed at `claimedAt` with a lease of `leaseMs` (by worker-dead). */
  async function leased(claimedAt: number, leaseMs = LEASE_MS, extra: Parameters<typeof newTask>[0] = {}): Promise<TaskRow> {
    const [id] = await seed(db, [newTask({ runAt: claimedAt - 1, ...extra })]);
    return claimOne(db, id!, { workerId: 'worker-dead', nowMs: claimedAt, leaseMs });
  }

  describe('expiredLeases', () => {
    it('lists only claimed rows whose lease ended before now, oldest lease first, as stored', async () => {
      const old = await leased(T0 - 100_000); // ended at T0 - 70 s
      const older = await leased(T0 - 200_000); // ended at T0 - 170 s
      const justEnded = await leased(T0 - LEASE_MS - 1); // ended 1 ms ago
      await leased(T0 - LEASE_MS); // ends exactly now: not yet expired
      await leased(T0 - 1000); // live
      await seed(db, [newTask({ runAt: T0 - 500_000 })]); // never claimed
      const rows = await db.store.expiredLeases(T0);
      expect(rows).to.deep.equal([older, old, justEnded]);
    });

    it('lists at most `limit` rows, the oldest ones', async () => {
      const all: TaskRow[] = [];
      for (let i = 0; i < 5; i++) all.push(await leased(T0 - 100_000 - i * 1000));
      const rows = await db.store.expiredLeases(T0, { limit: 2 });
      expect(rows.map((r) => r.id)).to.deep.equal([all[4]!.id, all[3]!.id]);
      expect(await db.store.expiredLeases(T0 - 1_000_000)).to.deep.equal([]);
    });

    it('lists 100 rows by default', async () => {
      await seed(db, Array.from({ length: 105 }, () => newTask({ runAt: T0 - 100_000 })));
      await db.store.claim(claimReq({ nowMs: T0 - 100_000, limit: 200 }));
      expect(await db.store.expiredLeases(T0)).to.have.length(100);
    });
  });

  describe('recovery writes', () => {
    it('recoverLease puts an expired claim back ready, keeping the lost attempt and the claim token; a new claim fences the old worker out', async () => {
      const t = await leased(T0 - 100_000);
      const [expired] = await db.store.expiredLeases(T0);
      const rec = errorAt('worker lost', expired!.attempts, T0, expired!.lockedBy);
      expect(await db.store.recoverLease(expired!, T0, rec, T0)).to.equal('ok');
      expect(await db.store.findPending(t.id)).to.deep.include({ attempts: 1, lockedBy: null, claimToken: t.claimToken, lockedUntil: null, runAt: T0, errors: [rec] });
      expect(await db.store.expiredLeases(T0 + 1)).to.deep.equal([]);
      // Another worker claims it: a new token, so the dead worker's late settle and heartbeat are refused.
      const [again] = await db.store.claim(claimReq({ workerId: 'worker-new' }));
      expect(again).to.deep.include({ id: t.id, attempts: 2, lockedBy: 'worker-new' });
      expect((await db.store.completeMany([success(t, T0 + 1, '"late"')], T0 + 1)).lost).to.have.length(1);
      expect(await db.store.heartbeat('worker-dead', [t], T0 + LEASE_MS)).to.deep.equal({ lost: [t.claimToken], cancelled: [], retaken: [] });
      expect(await count(db, 'completed')).to.equal(0);
    });

    it("a recovered claim nobody re-claimed still takes its worker's late result", async () => {
      const t = await leased(T0 - 100_000);
      const [expired] = await db.store.expiredLeases(T0);
      expect(await db.store.recoverLease(expired!, T0, errorAt('worker lost', 1, T0, expired!.lockedBy), T0)).to.equal('ok');
      expect((await db.store.completeMany([success(t, T0 + 1, '"late"')], T0 + 1)).done).to.have.length(1);
      expect(await db.store.findPending(t.id)).to.equal(null);
      // Recorded as that worker's, though the recovery had cleared the row's locked_by.
      expect(await db.store.findCompleted(t.id)).to.include({ returnValue: '"late"', failedAt: null, workerId: 'worker-dead' });
    });

    it("recoverLease refuses ('lost') a lease its worker renewed after it was listed", async () => {
      const t = await leased(T0 - 100_000);
      const [listed] = await db.store.expiredLeases(T0);
      expect(listed!.id).to.equal(t.id);
      await db.store.heartbeat('worker-dead', [t], T0 + LEASE_MS);
      expect(await db.store.recoverLease(listed!, T0, errorAt('x', 1, T0), T0)).to.equal('lost');
      expect(await db.store.findPending(t.id)).to.deep.equal({ ...t, lockedUntil: T0 + LEASE_MS });
      // The worker that kept its lease settles normally.
      expect((await db.store.completeMany([success(t, T0 + 5, '1')], T0 + 5)).done).to.have.length(1);
    });

    it("fail with expiredLeaseBefore refuses a renewed lease, and fails an expired one (with the recurring task's successor)", async () => {
      const renewed = await leased(T0 - 100_000, LEASE_MS, { repeatEvery: 60 });
      const dead = await leased(T0 - 100_000, LEASE_MS, { repeatEvery: 60 });
      const listed = await db.store.expiredLeases(T0);
      expect(listed.map((r) => r.id).sort()).to.deep.equal([renewed.id, dead.id].sort());
      await db.store.heartbeat('worker-dead', [renewed], T0 + LEASE_MS);
      const opts = (t: TaskRow) => ({ nowMs: T0, record: errorAt('lost', t.attempts, T0, t.lockedBy), successorAt: T0 + 60_000, attempts: t.attempts, expiredLeaseBefore: T0 });
      const byId = new Map(listed.map((r) => [r.id, r]));
      expect(await db.store.fail(byId.get(renewed.id)!, opts(renewed))).to.equal(false);
      expect(await db.store.fail(byId.get(dead.id)!, opts(dead))).to.equal(true);
      expect(await db.store.findCompleted(renewed.id)).to.equal(null);
      expect((await db.store.findCompleted(dead.id))!).to.include({ failedAt: T0, attempts: 1, workerId: 'worker-dead' });
      const pending = await pendingRows(db);
      expect(pending.map((r) => r.id)).to.include(renewed.id);
      expect(pending.filter((r) => r.id !== renewed.id)).to.have.length(1);
      expect(pending.find((r) => r.id !== renewed.id)).to.deep.include({ args: dead.args, runAt: T0 + 60_000, attempts: 0, lockedBy: null });
    });

    it("recoverLease answers 'cancelled' for an expired claim whose cancel was requested, and writes nothing", async () => {
      const t = await leased(T0 - 100_000);
      await db.store.requestCancel(t);
      const [listed] = await db.store.expiredLeases(T0);
      expect(listed!.cancelRequested).to.equal(true);
      expect(await db.store.recoverLease(listed!, T0, errorAt('x', 1, T0), T0)).to.equal('cancelled');
      expect(await db.store.findPending(t.id)).to.deep.equal(listed);
    });

    it('two recoveries racing for one expired claim: exactly one write succeeds', async () => {
      const t = await leased(T0 - 100_000);
      const [listed] = await db.store.expiredLeases(T0);
      const results = await Promise.all([
        db.store.recoverLease(listed!, T0, errorAt('a', 1, T0), T0),
        db.store.fail(listed!, { nowMs: T0, record: errorAt('b', 1, T0), successorAt: null, attempts: 1, expiredLeaseBefore: T0 }),
        db.store.recoverLease(listed!, T0, errorAt('c', 1, T0), T0),
      ]);
      const wins = results.filter((r) => r === 'ok' || r === true);
      expect(wins, JSON.stringify(results)).to.have.length(1);
      const pending = await db.store.findPending(t.id);
      const done = await db.store.findCompleted(t.id);
      expect(Number(pending !== null) + Number(done !== null)).to.equal(1);
    });
  });
});

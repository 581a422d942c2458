/**
 * Store conformance: leases (Store.heartbeat, requestCancel) on every database. A heartbeat
 * renews only the claims this worker still holds (id, claim token and worker all matching),
 * reports the tokens it lost and the cancel requests made meanwhile, and writes nothing else.
 */
import { expect } from 'chai';
import { contract } from '../../helpers/databases.js';
import { claimReq, LEASE_MS, newTask, pendingRows, seed, T0 } from '../../helpers/store-fixtures.js';
import type { TaskRow } from '../../../core/types.js';

// The heartbeat takes the claimed rows themselves: a recovered claim is taken back as the claim left it.
const held = (rows: TaskRow[]) => rows;

contract('store: lease', (db) => {
  beforeEach(() => db.reset());

  it("renews the lease of this worker's live claims and nothing else: no other column, no other worker's row", async () => {
    await seed(db, [newTask(), newTask(), newTask()]);
    const mine = await db.store.claim(claimReq({ workerId: 'worker-a', limit: 2 }));
    const theirs = await db.store.claim(claimReq({ workerId: 'worker-b' }));
    expect(mine).to.have.length(2);
    expect(theirs).to.have.length(1);
    const until = T0 + 10 * LEASE_MS;
    expect(await db.store.heartbeat('worker-a', held(mine), until)).to.deep.equal({ lost: [], cancelled: [], retaken: [] });
    for (const r of mine) expect(await db.store.findPending(r.id)).to.deep.equal({ ...r, lockedUntil: until });
    expect(await db.store.findPending(theirs[0]!.id)).to.deep.equal(theirs[0]);
  });

  it("does not renew a claim named by its id and token when the worker id is another's", async () => {
    await seed(db, [newTask()]);
    const [row] = await db.store.claim(claimReq({ workerId: 'worker-a' }));
    await db.store.heartbeat('worker-b', held([row!]), T0 + 99 * LEASE_MS);
    expect(await db.store.findPending(row!.id)).to.deep.equal(row);
  });

  it('renews a lease that ran out while nobody took the task over (the claim still holds)', async () => {
    await seed(db, [newTask()]);
    const [row] = await db.store.claim(claimReq());
    const late = T0 + LEASE_MS + 5_000;
    expect(await db.store.heartbeat('worker-a', held([row!]), late + LEASE_MS)).to.deep.equal({ lost: [], cancelled: [], retaken: [] });
    expect((await db.store.findPending(row!.id))!.lockedUntil).to.equal(late + LEASE_MS);
  });

  it('reports the token of a task claimed again by another claim as lost, and leaves the new lease alone', async () => {
    await seed(db, [newTask(), newTask()]);
    const [kept, taken] = await db.store.claim(claimReq({ workerId: 'worker-a' }));
    // The second task goes back and another worker claims it: a new token.
    expect(await db.store.release([taken!])).to.equal(1);
    const [retaken] = await db.store.claim(claimReq({ workerId: 'worker-b', nowMs: T0 + 1 }));
    expect(retaken!.id).to.equal(taken!.id);
    const r = await db.store.heartbeat('worker-a', held([kept!, taken!]), T0 + 5 * LEASE_MS);
    expect(r).to.deep.equal({ lost: [taken!.claimToken], cancelled: [], retaken: [] });
    expect((await db.store.findPending(kept!.id))!.lockedUntil).to.equal(T0 + 5 * LEASE_MS);
    expect(await db.store.findPending(retaken!.id)).to.deep.equal(retaken);
  });

  it('reports the token of a deleted task as lost', async () => {
    await seed(db, [newTask(), newTask()]);
    const rows = await db.store.claim(claimReq());
    await db.store.knex(db.store.tables.tasks).where('id', rows[1]!.id).del();
    expect(await db.store.heartbeat('worker-a', held(rows), T0 + LEASE_MS)).to.deep.equal({ lost: [rows[1]!.claimToken], cancelled: [], retaken: [] });
  });

  it('reports a cancel request on a held claim (and still renews its lease); a stale claim cannot be asked to cancel', async () => {
    await seed(db, [newTask(), newTask()]);
    const [a, b] = await db.store.claim(claimReq());
    expect(await db.store.requestCancel(a!)).to.equal(true);
    expect((await db.store.findPending(a!.id))!.cancelRequested).to.equal(true);
    const r = await db.store.heartbeat('worker-a', held([a!, b!]), T0 + 3 * LEASE_MS);
    expect(r).to.deep.equal({ lost: [], cancelled: [a!.claimToken], retaken: [] });
    expect((await db.store.findPending(a!.id))!.lockedUntil).to.equal(T0 + 3 * LEASE_MS);

    // b's claim is replaced: the old claim token no longer names it.
    await db.store.release([b!]);
    const [b2] = await db.store.claim(claimReq({ workerId: 'worker-b' }));
    expect(await db.store.requestCancel(b!)).to.equal(false);
    expect(await db.store.findPending(b2!.id)).to.deep.equal(b2);
  });

  it('answers an empty heartbeat with nothing lost and writes nothing', async () => {
    await seed(db, [newTask()]);
    await db.store.claim(claimReq());
    const before = await pendingRows(db);
    expect(await db.store.heartbeat('worker-a', [], T0 + LEASE_MS)).to.deep.equal({ lost: [], cancelled: [], retaken: [] });
    expect(await pendingRows(db)).to.deep.equal(before);
  });

  it('renews hundreds of claims from several claim batches in one heartbeat', async () => {
    await seed(db, Array.from({ length: 600 }, () => newTask()));
    const rows = [...(await db.store.claim(claimReq({ limit: 300 }))), ...(await db.store.claim(claimReq({ limit: 300 })))];
    expect(rows).to.have.length(600);
    expect(await db.store.heartbeat('worker-a', held(rows), T0 + 7)).to.deep.equal({ lost: [], cancelled: [], retaken: [] });
    expect(new Set((await pendingRows(db)).map((r) => r.lockedUntil))).to.deep.equal(new Set([T0 + 7]));
  });
});

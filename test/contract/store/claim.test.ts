/**
 * Store conformance: claiming (Store.claim, countReady, unknownReady) on every database. The
 * claim picks due, unclaimed rows in claim order through the dialect's statement, honours the
 * name and queue filters and the limit, counts the attempt and takes the lease; concurrent claims
 * never share a row.
 */
import { expect } from 'chai';
import type { NewTask } from '../../../core/store/rows.js';
import { contract } from '../../helpers/databases.js';
import { claimReq, JOB, LEASE_MS, newTask, OTHER, pendingRows, seed, T0 } from '../../helpers/store-fixtures.js';

contract('store: claim', (db) => {
  beforeEach(() => db.reset());

  /** Claims one row at a time until none is left; the ids in the order they came. */
  async function claimOneByOne(ordering: 'ASC' | 'DESC'): Promise<string[]> {
    const order: string[] = [];
    for (;;) {
      const rows = await db.store.claim(claimReq({ ordering, limit: 1 }));
      if (rows.length === 0) return order;
      expect(rows).to.have.length(1);
      order.push(rows[0]!.id);
    }
  }

  /** Tasks whose claim order differs by priority, run time and id (priority, runAt offset). */
  const orderCases: Array<[number, number]> = [
    [0, -10],
    [5, -1],
    [5, -20],
    [-3, -30],
    [0, -10], // same priority and run time as the first: the id decides
    [5, -20],
    [0, -50],
  ];

  it('claims by priority DESC, then run time, then id (each single-row claim takes the next one)', async () => {
    const ids = await seed(db, orderCases.map(([priority, dt]) => newTask({ priority, runAt: T0 + dt })));
    const expected = orderCases
      .map(([p, dt], i) => ({ id: ids[i]!, p, dt, i }))
      .sort((a, b) => b.p - a.p || a.dt - b.dt || a.i - b.i)
      .map((x) => x.id);
    expect(await claimOneByOne('DESC')).to.deep.equal(expected);
  });

  it('claims by priority ASC, then run time, then id with ordering ASC', async () => {
    const ids = await seed(db, orderCases.map(([priority, dt]) => newTask({ priority, runAt: T0 + dt })));
    const expected = orderCases
      .map(([p, dt], i) => ({ id: ids[i]!, p, dt, i }))
      .sort((a, b) => a.p - b.p || a.dt - b.dt || a.i - b.i)
      .map((x) => x.id);
    expect(await claimOneByOne('ASC')).to.deep.equal(expected);
  });

  it('takes the first rows in claim order when the limit cuts, and returns them sorted in that order', async () => {
    const ids = await seed(db, orderCases.map(([priority, dt]) => newTask({ priority, runAt: T0 + dt })));
    const expected = orderCases
      .map(([p, dt], i) => ({ id: ids[i]!, p, dt, i }))
      .sort((a, b) => b.p - a.p || a.dt - b.dt || a.i - b.i)
      .map((x) => x.id);
    const rows = await db.store.claim(claimReq({ limit: 4 }));
    expect(rows.map((r) => r.id)).to.deep.equal(expected.slice(0, 4));
    const left = (await pendingRows(db)).filter((r) => r.lockedBy === null).map((r) => r.id);
    expect(left.sort()).to.deep.equal(expected.slice(4).sort());
  });

  it('claims only due rows: run time at or before now, not a millisecond later', async () => {
    const [past, now, later] = await seed(db, [newTask({ runAt: T0 - 1 }), newTask({ runAt: T0 }), newTask({ runAt: T0 + 1 })]);
    const rows = await db.store.claim(claimReq());
    expect(rows.map((r) => r.id).sort()).to.deep.equal([past, now].sort());
    expect((await db.store.findPending(later!))!.lockedBy).to.equal(null);
    expect((await db.store.claim(claimReq({ nowMs: T0 + 1 }))).map((r) => r.id)).to.deep.equal([later]);
  });

  it('never claims a claimed row again, even after its lease ran out (recovery puts it back first)', async () => {
    const [id] = await seed(db, [newTask({ runAt: T0 - 1 })]);
    const [first] = await db.store.claim(claimReq());
    expect(first!.id).to.equal(id);
    expect(await db.store.claim(claimReq({ workerId: 'worker-b' }))).to.deep.equal([]);
    expect(await db.store.claim(claimReq({ workerId: 'worker-b', nowMs: T0 + LEASE_MS * 10 }))).to.deep.equal([]);
    expect(await db.store.findPending(id!)).to.deep.equal(first);
  });

  it('counts the attempt and sets the lease on the returned rows exactly as stored; each row gets its own claim token', async () => {
    const [a, b] = await seed(db, [newTask({ runAt: T0 - 5 }), newTask({ runAt: T0 - 6 })]);
    // A task that already failed twice.
    await db.store.knex(db.store.tables.tasks).where('id', b!).update({ attempts: 2 });
    const rows = await db.store.claim(claimReq({ workerId: 'worker-z', leaseMs: 12_345 }));
    expect(rows.map((r) => r.id).sort()).to.deep.equal([a, b].sort());
    for (const r of rows) {
      expect(r).to.include({ lockedBy: 'worker-z', lockedAt: T0, lockedUntil: T0 + 12_345, attempts: r.id === b ? 3 : 1, cancelRequested: false });
      expect(r.claimToken).to.be.a('string').and.match(new RegExp(`:${r.id}$`));
      expect(await db.store.findPending(r.id)).to.deep.equal(r);
    }
    expect(rows[0]!.claimToken).to.not.equal(rows[1]!.claimToken);
    // A later claim of the same row (after a release) gets a different token.
    const first = rows.find((r) => r.id === a)!;
    expect(await db.store.release([first])).to.equal(1);
    const [again] = await db.store.claim(claimReq());
    expect(again!.id).to.equal(a);
    expect(again!.claimToken).to.not.equal(first.claimToken);
  });

  it('claims only the names given; no names or a limit of 0 claims nothing and writes nothing', async () => {
    const [job, other, unknown] = await seed(db, [newTask({ name: JOB }), newTask({ name: OTHER }), newTask({ name: 'store.unknown' })]);
    const before = await pendingRows(db);
    expect(await db.store.claim(claimReq({ names: [] }))).to.deep.equal([]);
    expect(await db.store.claim(claimReq({ limit: 0 }))).to.deep.equal([]);
    expect(await pendingRows(db)).to.deep.equal(before);
    expect((await db.store.claim(claimReq({ names: [OTHER] }))).map((r) => r.id)).to.deep.equal([other]);
    expect((await db.store.claim(claimReq())).map((r) => r.id)).to.deep.equal([job]);
    expect((await db.store.findPending(unknown!))!.lockedBy).to.equal(null);
  });

  describe('queue filters', () => {
    let ids: Record<string, string>;
    beforeEach(async () => {
      const queues: Array<string | null> = ['a', 'b', 'c', null];
      const got = await seed(db, queues.map((queue) => newTask({ queue })));
      ids = Object.fromEntries(queues.map((q, i) => [q ?? 'none', got[i]!]));
    });
    const claimed = async (f: { queues?: string[] | null; excludeQueues?: string[] | null }) =>
      (await db.store.claim(claimReq({ queues: f.queues ?? null, excludeQueues: f.excludeQueues ?? null }))).map((r) => r.id).sort();

    it('queues null claims every queue and tasks without one', async () => {
      expect(await claimed({})).to.deep.equal([ids.a, ids.b, ids.c, ids.none].sort());
    });

    it('queues [a, b] claims those queues only, not tasks without a queue', async () => {
      expect(await claimed({ queues: ['a', 'b'] })).to.deep.equal([ids.a, ids.b].sort());
    });

    it('excludeQueues [a, b] claims every other queue and tasks without a queue', async () => {
      expect(await claimed({ excludeQueues: ['a', 'b'] })).to.deep.equal([ids.c, ids.none].sort());
    });

    it('an empty excludeQueues excludes nothing', async () => {
      expect(await claimed({ excludeQueues: [] })).to.deep.equal([ids.a, ids.b, ids.c, ids.none].sort());
    });
  });

  it('respects the limit and leaves the rest unclaimed', async () => {
    await seed(db, Array.from({ length: 10 }, () => newTask({ runAt: T0 - 1 })));
    const rows = await db.store.claim(claimReq({ limit: 3 }));
    expect(rows).to.have.length(3);
    const stored = await pendingRows(db);
    expect(stored.filter((r) => r.lockedBy !== null).map((r) => r.id).sort()).to.deep.equal(rows.map((r) => r.id).sort());
    expect(stored.filter((r) => r.lockedBy === null)).to.have.length(7);
  });

  for (const [rows, claimers, limit] of [
    [300, 8, 50],
    [40, 10, 7],
  ] as const) {
    it(`never hands one row to two of ${claimers} concurrent claims (${rows} rows, limit ${limit} each, 3 rounds)`, async function () {
      this.timeout(30_000);
      for (let round = 0; round < 3; round++) {
        await db.reset();
        const tasks: NewTask[] = Array.from({ length: rows }, (_, i) => newTask({ priority: i % 3, runAt: T0 - (i % 5) }));
        await seed(db, tasks);
        const results = await Promise.all(
          Array.from({ length: claimers }, (_, w) => db.store.claim(claimReq({ workerId: `worker-${w}`, limit }))),
        );
        const all = results.flat();
        expect(new Set(all.map((r) => r.id)).size, 'distinct ids').to.equal(all.length);
        for (const got of results) expect(got.length).to.be.at.most(limit);
        // SKIP LOCKED may pass over a row another claim held without taking it (MariaDB locks a
        // row past its LIMIT): such a row is left for the next claim, never lost.
        const rest = await db.store.claim(claimReq({ workerId: 'worker-last', limit: rows }));
        expect(rest.filter((r) => all.some((a) => a.id === r.id))).to.deep.equal([]);
        expect(all.length + rest.length).to.equal(rows);
        const stored = new Map((await pendingRows(db)).map((r) => [r.id, r]));
        results.forEach((got, w) => {
          for (const r of got) {
            expect(r.lockedBy).to.equal(`worker-${w}`);
            expect(stored.get(r.id)).to.deep.equal(r);
          }
        });
      }
    });
  }

  describe('countReady and unknownReady', () => {
    it('countReady counts the due, unclaimed rows the filter would claim', async () => {
      await seed(db, [
        newTask({ queue: 'a' }),
        newTask({ queue: 'a', runAt: T0 + 1 }), // not due
        newTask({ queue: 'b' }),
        newTask(),
        newTask({ name: 'store.unknown' }),
        newTask({ name: OTHER, queue: 'a', runAt: T0 - 100 }),
      ]);
      const filter = (extra: Partial<ReturnType<typeof claimReq>> = {}) => claimReq(extra);
      expect(await db.store.countReady(filter(), T0)).to.equal(4);
      expect(await db.store.countReady(filter(), T0 + 1)).to.equal(5);
      expect(await db.store.countReady(filter({ queues: ['a'] }), T0)).to.equal(2);
      expect(await db.store.countReady(filter({ excludeQueues: ['a'] }), T0)).to.equal(2);
      expect(await db.store.countReady(filter({ names: [OTHER] }), T0)).to.equal(1);
      expect(await db.store.countReady(filter({ names: [] }), T0)).to.equal(0);
      // The count is what a claim then takes.
      const claimed = await db.store.claim(claimReq({ queues: ['a'] }));
      expect(claimed).to.have.length(2);
      expect(await db.store.countReady(filter({ queues: ['a'] }), T0)).to.equal(0);
      expect(await db.store.countReady(filter(), T0)).to.equal(2);
    });

    it('unknownReady counts due, unclaimed rows per name outside the list (every name for an empty list)', async () => {
      await seed(db, [
        newTask({ name: 'x.one' }),
        newTask({ name: 'x.one' }),
        newTask({ name: 'x.one', runAt: T0 + 1 }), // not due
        newTask({ name: 'x.two' }),
        newTask({ name: JOB }),
      ]);
      const [claimedTwo] = await db.store.claim(claimReq({ names: ['x.two'] }));
      expect(claimedTwo).to.not.equal(undefined);
      expect(Object.fromEntries(await db.store.unknownReady([JOB], T0))).to.deep.equal({ 'x.one': 2 });
      expect(Object.fromEntries(await db.store.unknownReady([], T0))).to.deep.equal({ 'x.one': 2, [JOB]: 1 });
      expect(Object.fromEntries(await db.store.unknownReady([JOB, 'x.one'], T0 + 1))).to.deep.equal({});
    });
  });
});

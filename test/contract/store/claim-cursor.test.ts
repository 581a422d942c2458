/**
 * Store conformance: the plain claim read on from its cursor (store/claim-cursor.ts), on every
 * database, through Store.claim() with one FlowPlan kept across claims as a worker keeps it.
 * Where the dialect claims from a cursor (PostgreSQL, MySQL/MariaDB), it must lose nothing: a
 * task of higher or lower priority is found at once, one behind the cursor as soon as a claim
 * from the start is due: at once when the claim from the cursor comes back short and reading from
 * the start is cheap, else within its share of the time. SQLite claims from the start every time,
 * and every case holds there too (but the one about the cursor).
 */
import { expect } from 'chai';
import { emptyFlowPlan, type FlowPlan } from '../../../core/store/claim.js';
import { FULL_EVERY_MS, FULL_SHARE, furthest } from '../../../core/store/claim-cursor.js';
import { isUnion } from '../../../core/store/dialects/dialect.js';
import { contract } from '../../helpers/databases.js';
import { claimReq, newTask, seed, T0 } from '../../helpers/store-fixtures.js';

contract('store: the claim from its cursor', (db) => {
  let plan: FlowPlan;
  beforeEach(async () => {
    await db.reset();
    plan = emptyFlowPlan();
  });

  const claim = async (limit: number, workerId = 'worker-a', p: FlowPlan = plan) => (await db.store.claim(claimReq({ limit, workerId, flow: p }))).map((t) => t.id);
  /** As if the last claim from the start were long ago. */
  const fullDue = () => (plan.fullClaimAt = -Infinity);
  const cursorUsed = () => db.store.dialect.claimFromCursor === true;

  it('claims one priority in order across claims, the cursor following the last task claimed', async () => {
    const ids = await seed(db, Array.from({ length: 10 }, (_, i) => newTask({ runAt: T0 - 100 + i })));
    const got = [...(await claim(3)), ...(await claim(3)), ...(await claim(3)), ...(await claim(3))];
    expect(got).to.deep.equal(ids);
    if (cursorUsed()) expect(plan.claimCursor).to.deep.include({ id: ids[9], runAt: T0 - 91, priority: 0 });
  });

  it('claims a task of higher priority enqueued behind the cursor at the next claim', async () => {
    const first = await seed(db, Array.from({ length: 6 }, (_, i) => newTask({ runAt: T0 - 100 + i })));
    expect(await claim(2)).to.deep.equal(first.slice(0, 2));
    // Earlier run time and higher priority: it ranks before the cursor's priority.
    const [urgent] = await seed(db, [newTask({ runAt: T0 - 500, priority: 5 })]);
    expect(await claim(2)).to.deep.equal([urgent, first[2]]);
  });

  it('claims tasks of lower priority once the cursor priority is used up, in the same claim', async () => {
    const high = await seed(db, Array.from({ length: 3 }, (_, i) => newTask({ runAt: T0 - 100 + i, priority: 2 })));
    const low = await seed(db, Array.from({ length: 3 }, (_, i) => newTask({ runAt: T0 - 300 + i, priority: -1 })));
    expect(await claim(2)).to.deep.equal(high.slice(0, 2));
    expect(await claim(3)).to.deep.equal([high[2], low[0], low[1]]);
  });

  it('finds a task behind the cursor when the claim from the cursor comes back short and reading from the start is cheap', async () => {
    const first = await seed(db, Array.from({ length: 4 }, (_, i) => newTask({ runAt: T0 - 100 + i })));
    expect(await claim(3)).to.deep.equal(first.slice(0, 3));
    // Same priority, an earlier run time: behind the cursor (an enqueue that committed late).
    const [late] = await seed(db, [newTask({ runAt: T0 - 1_000 })]);
    plan.fullClaimMs = 0;
    expect(await claim(3)).to.have.members([first[3], late]);
  });

  it('leaves a task behind the cursor when the claim from the cursor comes back short but reading from the start would exceed its share of the time', async () => {
    const first = await seed(db, Array.from({ length: 4 }, (_, i) => newTask({ runAt: T0 - 100 + i })));
    expect(await claim(3)).to.deep.equal(first.slice(0, 3));
    const [late] = await seed(db, [newTask({ runAt: T0 - 1_000 })]);
    // The last read from the start took 1 s and has just ended: the next may come FULL_SHARE s later.
    plan.fullClaimAt = Date.now();
    plan.fullClaimMs = 1_000;
    if (!cursorUsed()) {
      // SQLite reads from the start every time.
      expect(await claim(3)).to.deep.equal([late, first[3]]);
      return;
    }
    expect(await claim(3)).to.deep.equal([first[3]]);
    plan.fullClaimAt = Date.now() - FULL_SHARE * 1_000;
    expect(await claim(3)).to.deep.equal([late]);
  });

  it('leaves a task behind the cursor to the next claim from the start while the claims from the cursor are full', async () => {
    const first = await seed(db, Array.from({ length: 8 }, (_, i) => newTask({ runAt: T0 - 100 + i })));
    expect(await claim(2)).to.deep.equal(first.slice(0, 2));
    const [late] = await seed(db, [newTask({ runAt: T0 - 1_000 })]);
    if (cursorUsed()) {
      // From the cursor: the next two of the first batch, not the late task, which ranks first.
      expect(await claim(2)).to.deep.equal(first.slice(2, 4));
      fullDue();
    }
    // A claim from the start: the late task comes first.
    expect(await claim(2)).to.deep.equal(cursorUsed() ? [late, first[4]] : [late, first[2]]);
  });

  /** What each claim statement of `fn` read: from the cursor (a union of its ranges) or from the start. */
  async function readsOf(fn: () => Promise<unknown>): Promise<string[]> {
    const dialect = db.store.dialect;
    const claim0 = dialect.claim;
    const reads: string[] = [];
    dialect.claim = function (...args: Parameters<typeof claim0>) {
      reads.push(isUnion(args[2]) ? 'from the cursor' : 'from the start');
      return claim0.apply(this, args);
    };
    try {
      await fn();
    } finally {
      dialect.claim = claim0;
    }
    return reads;
  }

  /** The last read from the start has just ended after 1 ms; the last from the cursor took 5 ms, `cursorAgeMs` ago. */
  const startCheaperThanCursor = (cursorAgeMs = 0) => Object.assign(plan, { fullClaimAt: Date.now(), fullClaimMs: 1, cursorClaimMs: 5, cursorClaimAt: Date.now() - cursorAgeMs });

  /** Two tasks claimed by a claim of three (short), then a late task behind the cursor and one after it. */
  async function afterShortClaim(): Promise<{ late: string; next: string }> {
    const first = await seed(db, [newTask({ runAt: T0 - 100 }), newTask({ runAt: T0 - 99 })]);
    expect(await claim(3)).to.deep.equal(first);
    if (cursorUsed()) expect(plan.claimShort, 'two of three').to.equal(true);
    const [late] = await seed(db, [newTask({ runAt: T0 - 1_000 })]);
    const [next] = await seed(db, [newTask({ runAt: T0 - 50 })]);
    return { late: late!, next: next! };
  }

  it('after a short claim, reads from the start alone when its share allows: one claim statement, not two', async () => {
    const { late, next } = await afterShortClaim();
    // Due by its share (10 ms since a read of 0.01 ms), and never timed against the cursor.
    plan.fullClaimAt = Date.now() - 10;
    plan.fullClaimMs = 0.01;
    plan.cursorClaimMs = 0;
    let got: string[] = [];
    expect(await readsOf(async () => (got = await claim(3)))).to.deep.equal(['from the start']);
    expect(got).to.deep.equal([late, next]);
  });

  it('after a short claim, reads from the start alone when that took no longer than reading from the cursor, its share not yet due', async () => {
    const { late, next } = await afterShortClaim();
    startCheaperThanCursor();
    let got: string[] = [];
    expect(await readsOf(async () => (got = await claim(3)))).to.deep.equal(['from the start']);
    expect(got).to.deep.equal([late, next]);
  });

  it(`after a short claim, reads from the cursor when its timing of the cursor is older than FULL_EVERY_MS`, async () => {
    const { late, next } = await afterShortClaim();
    startCheaperThanCursor(FULL_EVERY_MS);
    let got: string[] = [];
    const reads = await readsOf(async () => (got = await claim(3)));
    if (!cursorUsed()) return expect([reads, got]).to.deep.equal([['from the start'], [late, next]]);
    // Short, but the read from the start is not due (50 ms after one of 1 ms): the late task waits.
    expect(reads).to.deep.equal(['from the cursor']);
    expect(got).to.deep.equal([next]);
    expect(plan.cursorClaimAt, 'timed again').to.be.above(Date.now() - FULL_EVERY_MS);
  });

  it('a busy worker (its last claim full) keeps to the cursor though reading from the start was no slower', async () => {
    const first = await seed(db, Array.from({ length: 4 }, (_, i) => newTask({ runAt: T0 - 100 + i })));
    expect(await claim(2)).to.deep.equal(first.slice(0, 2));
    const [late] = await seed(db, [newTask({ runAt: T0 - 1_000 })]);
    startCheaperThanCursor();
    let got: string[] = [];
    const reads = await readsOf(async () => (got = await claim(2)));
    if (!cursorUsed()) return expect([reads, got]).to.deep.equal([['from the start'], [late, first[2]]]);
    expect(reads).to.deep.equal(['from the cursor']);
    expect(got).to.deep.equal(first.slice(2, 4));
  });

  it('reads from the start at least every FULL_EVERY_MS', async () => {
    await seed(db, Array.from({ length: 4 }, (_, i) => newTask({ runAt: T0 - 100 + i })));
    const before = Date.now();
    await claim(1);
    if (!cursorUsed()) return expect(plan.claimCursor).to.equal(null);
    expect(plan.fullClaimAt).to.be.at.least(before);
    const at = plan.fullClaimAt;
    await claim(1);
    expect(plan.fullClaimAt, 'the second claim, within the interval, read from the cursor').to.equal(at);
    plan.fullClaimAt = Date.now() - FULL_EVERY_MS;
    await claim(1);
    expect(plan.fullClaimAt).to.be.above(at);
  });

  it('two workers with their own cursors claim every task once', async () => {
    const ids = await seed(db, Array.from({ length: 40 }, (_, i) => newTask({ runAt: T0 - 100 + (i % 7), priority: i % 3 })));
    const other = emptyFlowPlan();
    const got: string[] = [];
    for (let round = 0; round < 20 && got.length < ids.length; round++) {
      const [a, b] = await Promise.all([claim(3, 'worker-a'), claim(4, 'worker-b', other)]);
      got.push(...a, ...b);
      // Tasks keep arriving behind both cursors.
      if (round === 2) ids.push(...(await seed(db, [newTask({ runAt: T0 - 5_000 }), newTask({ runAt: T0 - 5_000, priority: 1 })])));
    }
    expect(got).to.have.length(ids.length);
    expect(new Set(got)).to.have.lengthOf(ids.length);
    expect(got).to.have.members(ids);
  });
});

describe('claim cursor: furthest', () => {
  const row = (priority: number, runAt: number, id: string) => ({ priority, run_at: runAt, id });
  it('takes the furthest position in claim order, never moving back', () => {
    const at = furthest(null, [row(1, 5, '9'), row(0, 1, '2'), row(0, 1, '10')], 'DESC');
    expect(at).to.deep.equal({ priority: 0, runAt: 1, id: '10' });
    expect(furthest(at, [row(3, 0, '1')], 'DESC')).to.equal(at);
    expect(furthest(null, [row(1, 5, '9'), row(0, 1, '2')], 'ASC')).to.deep.equal({ priority: 1, runAt: 5, id: '9' });
    expect(furthest(null, [], 'DESC')).to.equal(null);
  });
});

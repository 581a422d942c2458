/**
 * Store conformance: the plain claim's reads split by priority (store/claim-priorities.ts). The
 * split is used where the dialect asks for it (PostgreSQL, MySQL/MariaDB); its two parts, the
 * condition and the walk, are checked on every database, and so is every claim through a plan
 * that holds a walk's findings. On MySQL/MariaDB the cost is checked too: a claim beside not-due tasks of a
 * higher priority must not read them (the server's count of page reads, as in
 * claim-past-end.test.ts).
 */
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { emptyFlowPlan, type FlowPlan } from '../../../core/store/claim.js';
import { knownPriorities, PRIORITY_WALK_MAX, splitByPriority, WALK_EVERY_MS } from '../../../core/store/claim-priorities.js';
import { contract } from '../../helpers/databases.js';
import { claimReq, JOB, newTask, seed, T0 } from '../../helpers/store-fixtures.js';

contract('store: the claim split by priority', (db) => {
  let plan: FlowPlan;
  beforeEach(async () => {
    await db.reset();
    plan = emptyFlowPlan();
  });

  const claim = async (limit: number, p: FlowPlan = plan) => (await db.store.claim(claimReq({ limit, flow: p }))).map((t) => t.id);
  const walk = () => knownPriorities(db.store, plan, T0);
  /** A walk now: after the one a claim may have started, one more. */
  const walkNow = async () => {
    await walk();
    plan.prioritiesAt = -Infinity;
    return walk();
  };

  it('selects every task whatever priorities it is split by, known or stale', async () => {
    const ids = await seed(db, [-3, -2, -1, 0, 2, 5, 6, 9].map((priority, i) => newTask({ priority, runAt: T0 - 10 + i })));
    const splits: number[][] = [[], [0], [5, 6], [-10, 100], [2, 3, 4, 5], [-3, -2, -1, 0, 2, 5, 6, 9], [-3, -1, 0, 2, 5, 6, 9], [1, 7], [0.5, 2.5]];
    for (const known of splits) {
      const rows = (await splitByPriority(db.store.knex(db.store.tables.tasks).select('id'), known)) as Array<{ id: unknown }>;
      expect(rows.map((r) => String(r.id)).sort(), `split by [${known.join(', ')}]`).to.have.members(ids);
    }
  });

  it('walks to the priorities that hold unlocked unkeyed tasks not yet due, ascending, not those of claimed or keyed ones', async () => {
    const [running] = await seed(db, [newTask({ priority: 50, runAt: T0 - 100 })]);
    expect(await claim(1)).to.deep.equal([running]);
    await seed(db, [
      newTask({ priority: 3, runAt: T0 + 60_000 }),
      newTask({ priority: -2 }),
      newTask({ priority: 3 }),
      newTask({ priority: 7, runAt: T0 + 1 }),
      newTask({ priority: -4, runAt: T0 + 5 }),
      newTask({ priority: 100, concurrencyKey: 'k', runAt: T0 + 1 }),
    ]);
    // -2: all due; 50: claimed; 100: keyed.
    expect(await walkNow()).to.deep.equal([-4, 3, 7]);
  });

  it('walks again every WALK_EVERY_MS, and when a walk was slow within its share of the time', async () => {
    await seed(db, [newTask({ priority: 1, runAt: T0 + 10 })]);
    expect(await walk()).to.deep.equal([1]);
    expect(plan.prioritiesAt, 'when it ended').to.be.within(Date.now() - 100, Date.now());
    await seed(db, [newTask({ priority: 4, runAt: T0 + 10 })]);
    plan.prioritiesAt = Date.now();
    plan.prioritiesMs = 0;
    expect(await walk(), 'just walked').to.deep.equal([1]);
    plan.prioritiesAt = Date.now() - WALK_EVERY_MS;
    expect(await walk(), 'WALK_EVERY_MS later').to.deep.equal([1, 4]);
    await seed(db, [newTask({ priority: 8, runAt: T0 + 10 })]);
    // A walk of 100 ms may come 50 × 100 ms after it.
    plan.prioritiesMs = 100;
    plan.prioritiesAt = Date.now() - 2 * WALK_EVERY_MS;
    expect(await walk(), 'slow: not yet').to.deep.equal([1, 4]);
    plan.prioritiesMs = 100;
    plan.prioritiesAt = Date.now() - 5_000;
    expect(await walk(), 'slow: its share later').to.deep.equal([1, 4, 8]);
  });

  it('walks once for claims beside each other, and a claim starts a walk when one is due', async () => {
    await seed(db, [newTask({ priority: 1, runAt: T0 + 10 }), newTask({ priority: 2, runAt: T0 + 10 }), newTask({ priority: 0 })]);
    const steps: string[] = [];
    const count = (q: { sql: string }) => {
      if (/^select .priority., .run_at. from/i.test(q.sql)) steps.push(q.sql);
    };
    db.store.knex.on('query', count);
    try {
      const [a, b] = await Promise.all([walk(), walk()]);
      expect(a).to.deep.equal([1, 2]);
      expect(b).to.deep.equal([1, 2]);
      expect(steps, 'one seek per priority and one past the last').to.have.length(4);
    } finally {
      db.store.knex.off('query', count);
    }
    if (!db.store.dialect.seeksPerPriority) return;
    // Due again: the claim starts the next walk beside it (and reads with what the last one
    // found meanwhile). It claims nothing here, so the walk sees every task.
    await seed(db, [newTask({ priority: 3, runAt: T0 + 10 })]);
    plan.prioritiesAt = -Infinity;
    expect(await db.store.claim(claimReq({ names: ['store.none'], flow: plan }))).to.have.length(0);
    expect(plan.prioritiesWalk !== null || plan.prioritiesAt > -Infinity, 'a walk started').to.equal(true);
    expect(await walk()).to.deep.equal([1, 2, 3]);
    expect(plan.prioritiesWalk).to.equal(null);
  });

  it('keeps what it found when a walk fails, and waits its turn before the next', async () => {
    await seed(db, [newTask({ priority: 6, runAt: T0 + 10 })]);
    plan.priorities = [1, 4];
    // A store whose connection pool is closed: every statement of the walk fails.
    const closed = knexFactory(db.store.knex.client.config as Knex.Config);
    await closed.destroy();
    const broken = Object.create(db.store, { knex: { value: closed } }) as typeof db.store;
    expect(await knownPriorities(broken, plan, T0)).to.deep.equal([1, 4]);
    expect(plan.prioritiesWalk).to.equal(null);
    expect(plan.prioritiesAt, 'timed').to.be.within(Date.now() - 1_000, Date.now());
    expect(await walk(), 'not due again at once').to.deep.equal([1, 4]);
    plan.prioritiesAt = -Infinity;
    expect(await walk(), 'the next walk').to.deep.equal([6]);
  });

  it(`looks at ${PRIORITY_WALK_MAX} priorities at most, the lowest; a claim still takes the highest first`, async () => {
    await seed(db, Array.from({ length: PRIORITY_WALK_MAX + 8 }, (_, priority) => newTask({ priority, runAt: T0 + 100 })));
    const ids = await seed(db, Array.from({ length: PRIORITY_WALK_MAX + 8 }, (_, priority) => newTask({ priority, runAt: T0 - 100 })));
    expect(await walkNow()).to.deep.equal(Array.from({ length: PRIORITY_WALK_MAX }, (_, p) => p));
    expect(await claim(3)).to.deep.equal(ids.slice(-3).reverse());
  });

  it('claims in claim order through a plan holding a walk, tasks of priorities the walk did not find included', async () => {
    const base = await seed(db, [0, 0, 0, 0].map((priority, i) => newTask({ priority, runAt: T0 - 100 + i })));
    await seed(db, [newTask({ priority: 9, runAt: T0 + 60_000 }), newTask({ priority: -5, runAt: T0 + 60_000 })]);
    expect(await claim(1)).to.deep.equal([base[0]]);
    // 0 holds only due tasks.
    expect(await walkNow(), 'walked').to.deep.equal([-5, 9]);
    // New priorities the walk has not seen: above the cursor (in a gap and beside a known one) and below.
    const [urgent, beside, low] = await seed(db, [newTask({ priority: 5, runAt: T0 - 1 }), newTask({ priority: 9, runAt: T0 - 1 }), newTask({ priority: -2, runAt: T0 - 1 })]);
    expect(await claim(3)).to.deep.equal([beside, urgent, base[1]]);
    expect(await claim(4)).to.deep.equal([base[2], base[3], low]);
  });

  it('claims in ascending claim order through a plan holding a walk too', async () => {
    const asc = async (limit: number) => (await db.store.claim(claimReq({ limit, ordering: 'ASC', flow: plan }))).map((t) => t.id);
    const base = await seed(db, [0, 0, 0].map((priority, i) => newTask({ priority, runAt: T0 - 100 + i })));
    await seed(db, [newTask({ priority: 9, runAt: T0 + 60_000 }), newTask({ priority: -5, runAt: T0 + 60_000 })]);
    expect(await asc(1)).to.deep.equal([base[0]]);
    expect(await walkNow()).to.deep.equal([-5, 9]);
    // Ascending, lower priorities rank first: -5 (named) and -3 (in a gap) come before the cursor's 0.
    const [named, gap, high] = await seed(db, [newTask({ priority: -5, runAt: T0 - 1 }), newTask({ priority: -3, runAt: T0 - 1 }), newTask({ priority: 9, runAt: T0 - 1 })]);
    expect(await asc(3)).to.deep.equal([named, gap, base[1]]);
    expect(await asc(3)).to.deep.equal([base[2], high]);
  });

  describe("the worker's reads of what waits (countReady, outranked, unknownReady)", () => {
    const splits: number[][] = [[], [0], [3, 5], [-1, 0, 3, 5], [1, 4, 8]];

    it('count, and look above a priority, keyed and unkeyed tasks alike, whatever priorities they are split by', async () => {
      await seed(db, [
        newTask({ priority: -1 }),
        newTask({ priority: 0 }),
        newTask({ priority: 3 }),
        newTask({ priority: 5, runAt: T0 + 1 }),
        newTask({ priority: 2, concurrencyKey: 'k' }),
        newTask({ priority: 7, concurrencyKey: 'k2' }),
        newTask({ priority: 9, concurrencyKey: 'k', runAt: T0 + 1 }),
      ]);
      for (const known of splits) {
        const at = `split by [${known.join(', ')}]`;
        expect(await db.store.countReady(claimReq(), T0, new Set(), undefined, known), at).to.equal(5);
        expect(await db.store.countReady(claimReq(), T0 + 1, new Set(), undefined, known), at).to.equal(7);
        expect(await db.store.outranked(claimReq(), T0, 2, new Set(), known), `${at}: above 2 (unkeyed 3, keyed 7)`).to.equal(true);
        expect(await db.store.outranked(claimReq(), T0, 3, new Set(), known), `${at}: above 3 (keyed 7)`).to.equal(true);
        expect(await db.store.outranked(claimReq(), T0, 7, new Set(), known), `${at}: above 7 (9 is not due)`).to.equal(false);
        expect(await db.store.outranked(claimReq({ ordering: 'ASC' }), T0, 0, new Set(), known), `${at}: below 0, ascending`).to.equal(true);
      }
    });

    it('count the due tasks of names not registered, keyed and unkeyed together', async () => {
      await seed(db, [
        newTask({ name: 'x.one', priority: 4 }),
        newTask({ name: 'x.one' }),
        newTask({ name: 'x.one', concurrencyKey: 'k' }),
        newTask({ name: 'x.one', concurrencyKey: 'k', runAt: T0 + 1 }),
        newTask({ name: 'x.two', concurrencyKey: 'k' }),
      ]);
      for (const known of splits) {
        expect(Object.fromEntries(await db.store.unknownReady([JOB], T0, known)), `split by [${known.join(', ')}]`).to.deep.equal({ 'x.one': 3, 'x.two': 1 });
      }
    });
  });

  describe('beside not-due tasks of a higher priority (MySQL/MariaDB)', () => {
    if (db.name !== 'mysql') return;
    const NOT_DUE = 3_000;

    async function pageReads(): Promise<number> {
      const [rows] = (await db.store.knex.raw(`SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_read_requests'`)) as [Array<{ Value: string }>];
      return Number(rows[0]!.Value);
    }

    /** The least page reads of three claims of one due task each, from the cursor (the counter is the server's). */
    async function claimReads(p: FlowPlan, firstRunAt: number): Promise<number> {
      let least = Infinity;
      for (let round = 0; round < 3; round++) {
        // After the cursor: found by the claim from the cursor alone.
        const [due] = await seed(db, [newTask({ runAt: firstRunAt + round })]);
        p.fullClaimAt = Date.now();
        p.fullClaimMs = 60_000;
        const before = await pageReads();
        const got = await claim(5, p);
        least = Math.min(least, (await pageReads()) - before);
        expect(got).to.deep.equal([due]);
      }
      return least;
    }

    it('does not read them', async function () {
      this.timeout(60_000);
      await seed(db, Array.from({ length: NOT_DUE }, (_, i) => newTask({ priority: 1, runAt: T0 + 60_000 + i })));
      const [first] = await seed(db, [newTask({ runAt: T0 - 100 })]);
      expect(await claim(5)).to.deep.equal([first]);
      // The claim started a walk beside it.
      expect(await walk()).to.deep.equal([1]);
      const split = await claimReads(plan, T0 - 50);

      // They are there to be read: a plan that knows no priorities reads past them.
      const unsplit = emptyFlowPlan();
      unsplit.claimCursor = plan.claimCursor;
      unsplit.prioritiesAt = Infinity;
      const ranged = await claimReads(unsplit, T0 - 40);
      expect(ranged, `page reads of a claim past ${NOT_DUE} not-due tasks`).to.be.above(NOT_DUE);

      expect(split, `page reads of the least of three claims split by priority (${NOT_DUE} not-due tasks above)`).to.be.below(200);
    });

    async function rowsRead(fn: () => Promise<unknown>): Promise<number> {
      // Rows the server's handlers read, every way (server-wide; nothing else runs meanwhile).
      const read = async () => {
        const [rows] = (await db.store.knex.raw(`SHOW GLOBAL STATUS LIKE 'Handler_read%'`)) as [Array<{ Variable_name: string; Value: string }>];
        return rows.filter((r) => r.Variable_name !== 'Handler_read_rnd_deleted').reduce((sum, r) => sum + Number(r.Value), 0);
      };
      const before = await read();
      await fn();
      return (await read()) - before;
    }

    it("nor do the worker's reads of what waits", async function () {
      this.timeout(60_000);
      await seed(db, Array.from({ length: NOT_DUE }, (_, i) => newTask({ priority: 1, runAt: T0 + 60_000 + i })));
      await seed(db, [newTask({ runAt: T0 - 100 }), newTask({ runAt: T0 - 99 })]);
      expect(await claim(1)).to.have.length(1);
      const known = await walk();
      expect(known).to.deep.equal([1]);
      const f = claimReq();
      expect(await rowsRead(() => db.store.countReady(f, T0, new Set(), undefined, known)), 'countReady').to.be.below(200);
      expect(await rowsRead(() => db.store.unknownReady([JOB], T0, known)), 'unknownReady').to.be.below(200);
      expect(await rowsRead(() => db.store.outranked(f, T0, 0, new Set(), known)), 'outranked').to.be.below(200);
      // They are there to be read: one read of keyed and unkeyed tasks together reads them all.
      const together = () => db.store.knex(db.store.tables.tasks).whereNull('locked_by').where('run_at', '<=', T0).whereIn('name', f.names as string[]).count({ n: '*' });
      expect(await rowsRead(together), 'one read of both').to.be.above(NOT_DUE);
    });
  });
});

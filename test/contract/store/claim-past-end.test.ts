/**
 * MySQL/MariaDB: a claim from the cursor that finds fewer due tasks than it wants reads to the end
 * of the unlocked tasks, and InnoDB checks where a range ends only on a live entry: the entries
 * that wait for purge are skipped before that check. Beside a transaction held open (purge
 * stopped), the entries that finished tasks leave in the claim index must therefore not lie after
 * the unlocked tasks (migration 013 puts those at the end of the index). LONGTX-01 found such
 * claims reading millions of pages. The cost is read from the server's count of page reads
 * (Innodb_buffer_pool_read_requests, a server-wide counter: nothing else runs on this suite's
 * tables meanwhile). Other databases: PostgreSQL checks a range's end on every entry, SQLite has
 * no such entries; nothing to check.
 */
import { expect } from 'chai';
import { emptyFlowPlan } from '../../../core/store/claim.js';
import { contract } from '../../helpers/databases.js';
import { claimReq, newTask, seed, success, T0 } from '../../helpers/store-fixtures.js';

const FINISHED = 3_000;

contract('a short claim beside a transaction held open (MySQL/MariaDB)', (db) => {
  if (db.name !== 'mysql') return;

  beforeEach(() => db.reset());

  async function pageReads(): Promise<number> {
    const [rows] = (await db.store.knex.raw(`SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_read_requests'`)) as [Array<{ Value: string }>];
    return Number(rows[0]!.Value);
  }

  it('does not read the entries that the tasks finished meanwhile left in the claim index', async function () {
    this.timeout(60_000);
    const knex = db.store.knex;
    const held = await knex.transaction({ isolationLevel: 'repeatable read' });
    try {
      // Its first read takes the snapshot: from here on, purge keeps every entry deleted after it.
      await held.raw('SELECT COUNT(*) AS n FROM ??', [db.store.tables.completed]);
      await seed(db, Array.from({ length: FINISHED }, (_, i) => newTask({ runAt: T0 - 100_000 + i })));
      const plan = emptyFlowPlan();
      for (let finished = 0; finished < FINISHED; ) {
        const got = await db.store.claim(claimReq({ limit: 500, flow: plan }));
        expect(got, 'tasks left to claim').to.have.length.greaterThan(0);
        await db.store.completeMany(got.map((t) => success(t, T0 + 1, null)), T0 + 1);
        finished += got.length;
      }
      // The counter is the server's: purge of other suites' tables may add to it. Each of three
      // short claims from the cursor gets fresh tasks; the least they read is this claim's cost.
      let shortClaim = Infinity;
      for (let round = 0; round < 3; round++) {
        const fresh = await seed(db, [1, 2, 3].map((i) => newTask({ runAt: T0 - 10 + 3 * round + i })));
        // Only the claim from the cursor: the one from the start is not due (as if it had just run, slowly).
        plan.fullClaimAt = Date.now();
        plan.fullClaimMs = 60_000;
        const before = await pageReads();
        const got = await db.store.claim(claimReq({ limit: 10, flow: plan }));
        shortClaim = Math.min(shortClaim, (await pageReads()) - before);
        expect(got.map((t) => t.id)).to.deep.equal(fresh);
      }

      // The entries are there: a claim from the start walks past the claimed tasks' ones.
      plan.fullClaimAt = -Infinity;
      const before2 = await pageReads();
      expect(await db.store.claim(claimReq({ limit: 10, flow: plan }))).to.have.length(0);
      const fromStart = (await pageReads()) - before2;
      expect(fromStart, 'page reads of a claim from the start past the entries of 3,000 claimed tasks').to.be.above(FINISHED);

      expect(shortClaim, `page reads of the least of three short claims from the cursor (${FINISHED} finished tasks' entries wait for purge)`).to.be.below(1_000);
    } finally {
      await held.rollback();
    }
  });
});

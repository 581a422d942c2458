/**
 * PostgreSQL: the hot path's writes by id cannot be planned through an index other than the
 * primary key, whatever the statistics say (LONGTX-01 found each of these read a whole index when
 * the table's statistics said it was nearly empty).
 * - The claim updates the rows its locking read found where that read found them (their ctid, a
 *   Tid Scan), in both of its shapes (one ordered read; a union of reads, as from the cursor).
 *   Joined on id, it chose a full scan of the (enqueued_at, id) index for each of the 256 rows
 *   after an autovacuum: 10 s a claim.
 * - A lease renewal and a settle name their rows by id; neither the lease index (partial on
 *   `locked_by IS NOT NULL`) nor the (enqueued_at, id) index (partial since migration 012) may
 *   serve them. The renewal read the whole lease index (0.6 s), settles the (enqueued_at, id) one.
 * Each plan is read with EXPLAIN of the very statement the store sent. Other databases: nothing to
 * check here (what the statements do is checked by the contract suites on all three).
 */
import { expect } from 'chai';
import { emptyFlowPlan } from '../../../core/store/claim.js';
import { contract } from '../../helpers/databases.js';
import { claimReq, newTask, seed, success, T0 } from '../../helpers/store-fixtures.js';

contract('plans of the writes by id (PostgreSQL)', (db) => {
  if (db.name !== 'postgres') return;

  beforeEach(() => db.reset());

  /** The last statement matching `pattern` that the store sent while `run` ran, with its bindings (knex's query events). */
  async function sentStatement(run: () => Promise<unknown>, pattern = /^\s*WITH c AS/): Promise<{ sql: string; bindings: unknown[] }> {
    const seen: Array<{ sql: string; bindings: unknown[] }> = [];
    const listen = (q: { sql: string; bindings?: unknown[] }) => {
      if (pattern.test(q.sql)) seen.push({ sql: q.sql, bindings: q.bindings ?? [] });
    };
    db.store.knex.on('query', listen);
    try {
      await run();
    } finally {
      db.store.knex.removeListener('query', listen);
    }
    expect(seen, `a statement matching ${String(pattern)}`).to.have.length.greaterThan(0);
    return seen[seen.length - 1]!;
  }

  async function planOf(st: { sql: string; bindings: unknown[] }): Promise<string> {
    const trx = await db.store.knex.transaction();
    try {
      const r = (await trx.raw(`EXPLAIN (COSTS OFF) ${st.sql.replace(/\$(\d+)/g, '?')}`, st.bindings as never[])) as { rows: Array<Record<string, string>> };
      return r.rows.map((x) => x['QUERY PLAN']).join('\n');
    } finally {
      await trx.rollback();
    }
  }

  it('one ordered read and a read from the cursor (a union) both end in a Tid Scan of the task table, never an index lookup by id', async () => {
    // Enough rows for a table of many pages: over a page or two a sequential scan is cheaper.
    await seed(db, Array.from({ length: 3000 }, (_, i) => newTask({ runAt: T0 - 10_000 + i })));
    await db.store.knex.raw(`ANALYZE ${db.store.dialect.quote(db.store.tables.tasks)}`);
    const plan = emptyFlowPlan();
    const first = await sentStatement(() => db.store.claim(claimReq({ limit: 3, flow: plan })));
    // The next claim reads on from the cursor the first one left (a union of three ranges).
    const second = await sentStatement(() => db.store.claim(claimReq({ limit: 3, flow: plan })));
    expect(second.sql).to.match(/UNION ALL/);
    await db.store.knex(db.store.tables.tasks).update({ locked_by: null, claim_token: null, locked_until: null });
    for (const st of [first, second]) {
      const text = await planOf(st);
      const update = text.slice(text.lastIndexOf('->'));
      expect(update, text.slice(0, 1500)).to.match(/Tid Scan on \S*tasks t\b/);
      expect(text, text.slice(0, 1500)).to.match(/TID Cond: \(ctid = ANY/);
      expect(text, text.slice(0, 1500)).to.not.match(/Index Cond: \(id = /);
    }
  });

  it('a lease renewal and a settle of 200 tasks read neither the lease index nor the (enqueued_at, id) index', async () => {
    await seed(db, Array.from({ length: 3000 }, (_, i) => newTask({ runAt: T0 - 10_000 + i })));
    const tasks = await db.store.claim(claimReq({ limit: 200 }));
    expect(tasks).to.have.length(200);
    await db.store.knex.raw(`ANALYZE ${db.store.dialect.quote(db.store.tables.tasks)}`);
    const renewal = await sentStatement(() => db.store.heartbeat('worker-a', tasks, T0 + 60_000), /^update .* set "locked_until"/i);
    const settle = await sentStatement(() => db.store.completeMany(tasks.map((t) => success(t, T0 + 1, null)), T0 + 1), /DELETE FROM/);
    const tasksTable = db.store.tables.tasks;
    for (const st of [renewal, settle]) {
      const text = await planOf(st);
      expect(text, text.slice(0, 1500)).to.not.include(`${tasksTable}_lease`);
      expect(text, text.slice(0, 1500)).to.not.include(`${tasksTable}_enqueued`);
    }
  });
});

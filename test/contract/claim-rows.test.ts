/**
 * A claimed row is the stored row, column for column, on every database. SQLite's claim returns
 * each row as one JSON array (core/store/rows.ts TASK_COLUMNS) instead of the driver's row object, so
 * this suite pins down that text, numbers, nulls and booleans survive that path unchanged.
 */
import { expect } from 'chai';
import { contract } from '../helpers/databases.js';
import { TASK_COLUMNS, taskRecord } from '../../core/store/rows.js';
import type { ClaimRequest } from '../../core/store/store.js';

const NOW = 1_790_000_000_123;

/** Text a JSON round trip could damage: quotes, backslashes, control characters, non-ASCII. */
const AWKWARD = 'quote " apostrophe \' backslash \\ slash / tab \t newline \n nul-free \u0001 é ü ß 中文 😀 \u2028';

contract('claim: claimed rows keep every column', (db) => {
  const claimReq = (extra: Partial<ClaimRequest> = {}): ClaimRequest => ({
    names: ['claim.full', 'claim.sparse'],
    queues: null,
    excludeQueues: null,
    ordering: 'DESC',
    workerId: 'claim-rows-worker',
    nowMs: NOW,
    leaseMs: 60_000,
    limit: 10,
    ...extra,
  });

  beforeEach(() => db.reset());

  it('TASK_COLUMNS lists exactly the pending table columns', async () => {
    const info = await db.store.knex(db.store.tables.tasks).columnInfo();
    expect([...TASK_COLUMNS].sort()).to.deep.equal(Object.keys(info).sort());
    // taskRecord reads each column from its own position.
    const record = taskRecord(TASK_COLUMNS);
    for (const c of TASK_COLUMNS) expect(record[c], c).to.equal(c);
  });

  it('returns every column of a fully set row and of a mostly null row as stored', async () => {
    const full = {
      name: 'claim.full',
      args: JSON.stringify([AWKWARD, { nested: [1, 2.5, -3e-7, null, true] }, 9_007_199_254_740_991]),
      hash: 'f'.repeat(40),
      // Not the task name (names are matched by the claim): an awkward value in every other text column.
      queue: `q ${AWKWARD}`.slice(0, 60),
      priority: -7,
      verbose_name: AWKWARD,
      creator_type: 'user',
      creator_id: '42',
      run_at: NOW - 5_000,
      scheduled_at: NOW - 6_000,
      enqueued_at: NOW - 7_000,
      attempts: 3,
      repeat_every_ms: 3_600_000,
      repeat_cron: '0 9 * * 1-5',
      timezone: 'Pacific/Chatham',
      repeat_until: NOW + 86_400_000,
      recurring_key: 'claim.full:key',
      last_error: `Error: ${AWKWARD}\n    at somewhere (file.ts:1:2)`,
      errors: JSON.stringify([{ class: 'Error', message: AWKWARD, stack: `Error: ${AWKWARD}`, attempt: 3, at: NOW - 5, workerId: null }]),
      max_attempts: 9,
      max_run_time_ms: 1_500,
      expires_at: NOW + 1_000_000,
      repeat_on_failure: false,
      cancel_requested: false,
    };
    const sparse = {
      name: 'claim.sparse',
      args: '[]',
      hash: '0'.repeat(40),
      priority: 0,
      run_at: NOW - 1,
      scheduled_at: NOW - 1,
      enqueued_at: NOW - 1,
    };
    const { tasks } = db.store.tables;
    await db.store.knex(tasks).insert(full);
    await db.store.knex(tasks).insert(sparse);
    const claimed = await db.store.claim(claimReq());
    expect(claimed.map((t) => t.name).sort()).to.deep.equal([full.name, sparse.name].sort());
    for (const row of claimed) {
      // The claim took the lease…
      expect(row.lockedBy).to.equal('claim-rows-worker');
      expect(row.lockedAt).to.equal(NOW);
      expect(row.lockedUntil).to.equal(NOW + 60_000);
      expect(row.claimToken).to.match(new RegExp(`:${row.id}$`));
      // …and what it returned is what a plain read of the row gives now.
      const stored = await db.store.findPending(row.id);
      expect(row).to.deep.equal(stored);
    }
    const f = claimed.find((t) => t.name === full.name)!;
    expect(f.args).to.equal(full.args);
    expect(f.verboseName).to.equal(AWKWARD);
    expect(f.lastError).to.equal(full.last_error);
    expect(f.errors).to.deep.equal([{ class: 'Error', message: AWKWARD, stack: `Error: ${AWKWARD}`, attempt: 3, at: NOW - 5, workerId: null }]);
    expect(f.attempts).to.equal(4);
    expect(f.priority).to.equal(-7);
    expect(f.repeatEvery).to.equal(3600);
    expect(f.maxRunTime).to.equal(1.5);
    expect(f.repeatOnFailure).to.equal(false);
    expect(f.cancelRequested).to.equal(false);
    const s = claimed.find((t) => t.name === sparse.name)!;
    expect(s.queue).to.equal(null);
    expect(s.verboseName).to.equal(null);
    expect(s.repeatCron).to.equal(null);
    expect(s.repeatUntil).to.equal(null);
    expect(s.maxAttempts).to.equal(null);
    expect(s.maxRunTime).to.equal(null);
    expect(s.expiresAt).to.equal(null);
    expect(s.errors).to.deep.equal([]);
    expect(s.repeatOnFailure).to.equal(true);
    expect(s.attempts).to.equal(1);
  });

  it('a claim on a caller\'s transaction stays inside it (rolled back with it)', async () => {
    const { knex, tables } = db.store;
    const trx = await knex.transaction();
    try {
      await trx(tables.tasks).insert({ name: 'claim.sparse', args: '[]', hash: '1'.repeat(40), priority: 0, run_at: NOW - 1, scheduled_at: NOW - 1, enqueued_at: NOW - 1 });
      const candidates = trx(tables.tasks).select('id').whereNull('locked_by').limit(5);
      const rows = await db.store.dialect.claim(trx, tables.tasks, candidates, { workerId: 'w', token: 'tok', nowMs: NOW, leaseUntilMs: NOW + 1 });
      expect(rows).to.have.length(1);
    } finally {
      await trx.rollback();
    }
    expect(await knex(tables.tasks).count({ n: '*' }).then((r) => Number(r[0]!.n))).to.equal(0);
  });

  // Only SQLite keeps a BLOB in a text column (its columns have no fixed type).
  if (db.name === 'sqlite') {
    it('claims a row whose text another program stored as a BLOB', async () => {
      const { tasks } = db.store.tables;
      await db.store.knex(tasks).insert({ name: 'claim.sparse', args: Buffer.from('[1,"é"]'), hash: '2'.repeat(40), priority: 0, run_at: NOW - 1, scheduled_at: NOW - 1, enqueued_at: NOW - 1 });
      const [row] = await db.store.claim(claimReq());
      expect(row!.args).to.equal('[1,"é"]');
      expect(row!.lockedBy).to.equal('claim-rows-worker');
      expect(row!.attempts).to.equal(1);
    });
  }
});

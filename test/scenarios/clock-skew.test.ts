/**
 * Scenario SKEW-01 (docs/scenarios.md), on every database: two workers in this process whose clocks
 * run 30 s ahead and 30 s behind (injected clocks that follow real time), beside a lease left by a
 * dead worker. Each worker compares its clock with the database's at start and keeps the
 * database's time, so neither takes the other's live leases, the dead worker's lease is recovered
 * when it ends (not 30 s later), and each warns once. The database servers here run on this
 * machine, so the database's clock is this process's clock, and real time is the reference.
 */
import { expect } from 'chai';
import { background, getResult } from '../../core/index.js';
import type { Clock } from '../../core/base/clock.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';

const LOCK_TIMEOUT_S = 3;
const SKEW_MS = 30_000;

const runs = new Map<string, number>();
const gates = new Map<string, { open: () => void; opened: Promise<void> }>();
function gateFor(tag: string) {
  let g = gates.get(tag);
  if (!g) {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    g = { open, opened };
    gates.set(tag, g);
  }
  return g;
}

const hold = background({ name: 'skew.hold' }, async function hold(tag: string) {
  runs.set(tag, (runs.get(tag) ?? 0) + 1);
  await gateFor(tag).opened;
  return tag;
});

/** A machine clock off by `ms`: it follows real time, so the worker may correct it. */
const skewed = (ms: number): Clock => ({ now: () => Date.now() + ms });

contract('SKEW-01: workers whose clocks run 30 s ahead and behind', (db) => {
  it('SKEW-01: neither takes the other’s live leases, a dead worker’s lease is recovered when it ends (not 30 s later), and each warns once', async function () {
    this.timeout(40_000);
    await db.reset();
    runs.clear();
    gates.clear();
    const tasks = db.store.tables.tasks;
    const serverNow = () => db.store.dialect.serverTimeMs(db.store.knex);
    const row = async (id: string) => (await db.store.findPending(id))!;
    const leaseLeft = async (id: string) => (await row(id)).lockedUntil! - (await serverNow());
    const options = { sleep: 0.2, lockTimeout: LOCK_TIMEOUT_S, heartbeatInterval: 0.5, concurrency: 2 };

    // A dead worker's lease, written on the database's time, as every worker now writes them.
    const dead = await hold.using({ queue: 'b' })('dead');
    const [claimed] = await db.store.claim({
      names: ['skew.hold'],
      queues: ['b'],
      excludeQueues: null,
      ordering: 'DESC',
      workerId: 'dead-worker',
      nowMs: await serverNow(),
      leaseMs: LOCK_TIMEOUT_S * 1000,
      limit: 1,
    });
    expect(claimed?.id).to.equal(dead.id);
    const deadLeaseEnd = claimed!.lockedUntil!;

    const bLog = recordingLogger();
    const aLog = recordingLogger();
    const b1 = await hold.using({ queue: 'b' })('b1');
    const b2 = await hold.using({ queue: 'b' })('b2');
    const behind = await new Worker({ ...options, queues: ['b'], clock: skewed(-SKEW_MS), logger: bLog, workerId: 'behind' }).start(db.settings);
    let ahead: Worker | null = null;
    try {
      await waitUntil(() => runs.get('b1') === 1 && runs.get('b2') === 1, 'the worker 30 s behind to run both its tasks', 10_000);
      // Its leases end a lease after the database's now, not 30 s earlier.
      for (const r of [b1, b2]) expect(await leaseLeft(r.id), `lease of ${r.id}`).to.be.within(LOCK_TIMEOUT_S * 1000 - 1_500, LOCK_TIMEOUT_S * 1000 + 500);

      await waitUntil(async () => (await row(dead.id)).lockedBy !== 'dead-worker', 'the dead worker’s lease to be recovered', deadLeaseEnd - Date.now() + 5_000, 20);
      const lateMs = Date.now() - deadLeaseEnd;
      process.stdout.write(`      ${db.name}: the dead worker's lease was recovered ${lateMs} ms after it ended\n`);
      expect(lateMs, 'recovered after its lease ended, not before').to.be.at.least(-50);
      expect(lateMs, 'recovered within 2 s of the end of its lease').to.be.below(2_000);
      // Its log line follows the recovery's commit, which this test may see first.
      await waitUntil(() => bLog.find('warn', /recovered a task/).length > 0, 'the worker behind to log the recovery', 2_000);
      expect(bLog.find('warn', /recovered a task/).map((l) => l.fields.id)).to.deep.equal([dead.id]);

      const a1 = await hold.using({ queue: 'a' })('a1');
      const a2 = await hold.using({ queue: 'a' })('a2');
      ahead = await new Worker({ ...options, queues: ['a'], clock: skewed(SKEW_MS), logger: aLog, workerId: 'ahead' }).start(db.settings);
      await waitUntil(() => runs.get('a1') === 1 && runs.get('a2') === 1, 'the worker 30 s ahead to run both its tasks', 10_000);
      for (const r of [a1, a2]) expect(await leaseLeft(r.id), `lease of ${r.id}`).to.be.within(LOCK_TIMEOUT_S * 1000 - 1_500, LOCK_TIMEOUT_S * 1000 + 500);
      const before = new Map((await db.store.knex(tasks).select('id', 'locked_by', 'claim_token').whereIn('id', [b1.id, b2.id, a1.id, a2.id])).map((r: Record<string, unknown>) => [String(r.id), `${String(r.locked_by)} ${String(r.claim_token)}`]));

      // Longer than a lease, while each worker's recovery pass runs every 250 ms: with their own
      // clocks, the worker ahead would see the other's leases 60 s past their end.
      const until = Date.now() + LOCK_TIMEOUT_S * 1000 + 500;
      while (Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        expect(aLog.find('warn', /recovered a task/), 'recoveries by the worker ahead').to.deep.equal([]);
      }
      expect(bLog.find('warn', /recovered a task/)).to.have.length(1);
      const after = new Map((await db.store.knex(tasks).select('id', 'locked_by', 'claim_token').whereIn('id', [b1.id, b2.id, a1.id, a2.id])).map((r: Record<string, unknown>) => [String(r.id), `${String(r.locked_by)} ${String(r.claim_token)}`]));
      expect(after, 'every lease still held by its worker, under its claim').to.deep.equal(before);
      expect([...before.values()].map((v) => v.split(' ')[0]).sort()).to.deep.equal(['ahead', 'ahead', 'behind', 'behind']);

      for (const [log, sign] of [[aLog, 1], [bLog, -1]] as const) {
        const warned = log.find('warn', /clock and the database's differ/);
        expect(warned, 'one clock warning').to.have.length(1);
        expect(Number(warned[0]!.fields.worker_ahead_ms)).to.be.closeTo(sign * SKEW_MS, 1_000);
      }

      for (const tag of ['b1', 'b2', 'a1', 'a2', 'dead']) gateFor(tag).open();
      await waitUntil(async () => (await db.store.knex(tasks).count({ n: '*' }).then((r) => Number((r as Array<{ n: unknown }>)[0]!.n))) === 0, 'every task to finish', 15_000, 50);
      for (const [ref, tag] of [[b1, 'b1'], [b2, 'b2'], [a1, 'a1'], [a2, 'a2']] as const) {
        const r = await getResult(ref.id);
        expect([tag, r.status, r.attempts, runs.get(tag)]).to.deep.equal([tag, 'SUCCESSFUL', 1, 1]);
      }
      const d = await getResult(dead.id);
      expect([d.status, d.attempts, runs.get('dead')], 'the dead worker’s task: recovered, then run once').to.deep.equal(['SUCCESSFUL', 2, 1]);
      expect(d.errors[0]?.message).to.include('dead-worker');
    } finally {
      for (const g of gates.values()) g.open();
      await Promise.all([behind.stop(5), ahead?.stop(5)]);
    }
  });
});

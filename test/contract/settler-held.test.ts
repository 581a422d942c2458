/**
 * The settler's held tasks (worker/settler.ts) on every database: a result being written, not
 * only one queued, is among the tasks whose leases the worker's heartbeats renew and take back.
 * Left out while its write waited, a heartbeat after an outage took none of them back, and a claim
 * then took such a task again (another worker had recovered it meanwhile) and ran it a second time
 * on the same worker (HOSTS-01).
 */
import { expect } from 'chai';
import { closeConnection, connectPrivate } from '../../core/store/connection.js';
import { Settler, type SettleReport } from '../../core/worker/settler.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { claimOne, newTask, seed, T0 } from '../helpers/store-fixtures.js';

contract('settler: the tasks it holds', (db) => {
  beforeEach(() => db.reset());

  it('counts a result whose write is under way among the held tasks until it is written', async function () {
    this.timeout(30_000);
    const [id] = await seed(db, [newTask()]);
    const task = await claimOne(db, id!);
    const reports: SettleReport[] = [];
    const settler = new Settler({ store: db.store, workerId: 'worker-a', now: () => T0 + 1000, log: recordingLogger(), onSettled: (r) => reports.push(r), onConnection: () => {} });
    // Another connection holds the task's row (SQLite: the write lock) until released, so the
    // settler's write waits on it.
    const other = await connectPrivate(db.store.conn.spec);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = other.knex.transaction(async (trx) => {
      await trx(db.store.tables.tasks).where('id', id!).update({ priority: 0 });
      locked();
      await released;
    });
    try {
      await isLocked;
      settler.settle(task, { type: 'complete', successorAt: null }, null, 5);
      // Out of the queue and not yet written: the write is under way.
      await waitUntil(async () => settler.size === 0, 'the write to leave the queue', 10_000, 10);
      expect(reports, 'not written yet').to.deep.equal([]);
      expect(settler.held().map((t) => t.claimToken), 'held while its write waits').to.deep.equal([task.claimToken]);
    } finally {
      release();
      await holder;
      await closeConnection(other);
    }
    await waitUntil(async () => reports.length === 1, 'the write', 10_000, 10);
    expect(reports[0]!.outcome).to.equal('succeeded');
    expect(settler.held(), 'nothing held once written').to.deep.equal([]);
    await settler.stop();
  });
});

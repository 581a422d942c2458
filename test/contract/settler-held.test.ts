/**
 * The settler's held tasks (worker/settler.ts) on every database: a result being written, not
 * only one queued, is among the tasks whose leases the worker's heartbeats renew and take back.
 * Left out while its write waited, a heartbeat after an outage took none of them back, and a claim
 * then took such a task again (another worker had recovered it meanwhile) and ran it a second time
 * on the same worker (HOSTS-01).
 */
import { expect } from 'chai';
import { closeConnection, connectPrivate } from '../../core/store/connection.js';
import { Store } from '../../core/store/store.js';
import { currentClock } from '../../core/base/clock.js';
import { LeaseKeeper, type LeaseKeeperOptions } from '../../core/worker/lease-keeper.js';
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

  /** A lease keeper over `store` (one whose tables do not exist makes every beat fail). */
  const keeper = (store: Store, held: () => ReturnType<Settler['held']>): { keeper: LeaseKeeper; options: LeaseKeeperOptions } => {
    const options: LeaseKeeperOptions = {
      store,
      workerId: 'worker-a',
      clock: currentClock(),
      lockTimeoutMs: 60_000,
      intervalMs: 60_000,
      held,
      onLost: () => {},
      onCancelled: () => {},
      onConnection: () => {},
      log: recordingLogger(),
    };
    return { keeper: new LeaseKeeper(options), options };
  };

  it('an idle lease keeper is no longer behind once it beats, whatever made it behind', async () => {
    const { keeper: k } = keeper(db.store, () => []);
    k.markBehind();
    expect(k.behind()).to.equal(true);
    await k.beat();
    expect(k.behind(), 'behind after a beat with nothing held').to.equal(false);
  });

  it('writes no result while the leases are behind and a beat fails; writes it once a beat succeeds', async function () {
    this.timeout(30_000);
    const [id] = await seed(db, [newTask()]);
    const task = await claimOne(db, id!);
    const reports: SettleReport[] = [];
    const ref: { settler?: Settler } = {};
    // Beats fail until the keeper is given the real tables: a missing table is an error the
    // database answers, like a beat that began while it was away.
    const { keeper: k, options } = keeper(new Store(db.store.conn, `${db.store.prefix}gone_`), () => ref.settler!.held());
    const settler = (ref.settler = new Settler({ store: db.store, workerId: 'worker-a', now: () => T0 + 1000, log: recordingLogger(), onSettled: (r) => reports.push(r), onConnection: () => {}, leases: k }));
    k.markBehind();
    settler.settle(task, { type: 'complete', successorAt: null }, null, 5);
    expect(await settler.flush(Date.now() + 1500), 'flushed while behind').to.equal(false);
    expect(reports, 'nothing written while behind').to.deep.equal([]);
    expect((await db.store.knex(db.store.tables.tasks).where('id', id!).first()) as unknown, 'still pending').to.not.equal(undefined);
    options.store = db.store;
    await waitUntil(async () => reports.length === 1, 'the write once a beat succeeds', 15_000, 20);
    expect(reports[0]!.outcome).to.equal('succeeded');
    await settler.stop();
  });
});

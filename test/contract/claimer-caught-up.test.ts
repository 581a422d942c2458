/**
 * The worker's claims after its leases lapsed (worker/claimer.ts), on every database: nothing is
 * claimed until a heartbeat succeeds, since that beat takes back the tasks another worker
 * recovered meanwhile. A claim that went on after a failed beat took such a task again, and the
 * worker ran it a second time (HOSTS-01).
 */
import { expect } from 'chai';
import { ManualClock } from '../../core/base/clock.js';
import { claimOrder, Store } from '../../core/store/store.js';
import { Claimer } from '../../core/worker/claimer.js';
import { DatabaseHealth } from '../../core/worker/db-health.js';
import { FlowState } from '../../core/worker/flow-state.js';
import { LeaseKeeper, type LeaseKeeperOptions } from '../../core/worker/lease-keeper.js';
import { PrefetchBuffer } from '../../core/worker/prefetch.js';
import { Settler } from '../../core/worker/settler.js';
import { UnansweredClaims } from '../../core/worker/unanswered-claims.js';
import type { TaskRow } from '../../core/types.js';
import { contract } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { claimOne, errorAt, JOB, LEASE_MS, newTask, seed, T0 } from '../helpers/store-fixtures.js';

contract('claimer: claims wait for a heartbeat that succeeds', (db) => {
  beforeEach(() => db.reset());

  it('claims nothing while the leases are behind and a beat fails; once one succeeds, the recovered task is taken back, not claimed again', async function () {
    this.timeout(30_000);
    const clock = new ManualClock(T0 + 1000);
    const log = recordingLogger();
    const [mineId, otherId] = await seed(db, [newTask({ runAt: T0 }), newTask({ runAt: T0 + 500 })]);
    // This worker runs `mine`; its lease ran out while it could not renew it, and another
    // worker's recovery pass made it READY (it keeps its claim token).
    const mine = await claimOne(db, mineId!);
    clock.set(T0 + LEASE_MS + 5_000);
    expect(await db.store.recoverLease(mine, clock.now(), errorAt('lease expired', 1, clock.now(), 'worker-b'), clock.now())).to.equal('ok');
    expect((await db.store.findPending(mineId!))!.lockedBy, 'recovered: READY').to.equal(null);

    const held: TaskRow[] = [mine];
    // Beats fail while the keeper's store names tables that do not exist: an error the database
    // answers, like a beat that began while it was away and ends once it is back.
    const gone = new Store(db.store.conn, `${db.store.prefix}gone_`);
    const leaseOptions: LeaseKeeperOptions = {
      store: gone,
      workerId: 'worker-a',
      clock,
      lockTimeoutMs: LEASE_MS,
      intervalMs: 60_000,
      held: () => held,
      onLost: () => {},
      onCancelled: () => {},
      onConnection: () => {},
      log,
    };
    const leases = new LeaseKeeper(leaseOptions);
    leases.markBehind();
    const settler = new Settler({ store: db.store, workerId: 'worker-a', now: () => clock.now(), log, onSettled: () => {}, onConnection: () => {} });
    const flow = new FlowState({ store: db.store, names: [JOB], log, everyMs: 10, declared: {}, workerId: 'worker-a', nowMs: () => clock.now() });
    await flow.start();
    const claimer = new Claimer({
      workerId: 'worker-a',
      store: db.store,
      clock,
      health: new DatabaseHealth(db.store, log),
      unanswered: new UnansweredClaims(db.store, 'worker-a', log),
      flow,
      leases,
      settler,
      buffer: new PrefetchBuffer(claimOrder('DESC'), 100),
      filter: { names: [JOB], queues: null, excludeQueues: null, ordering: 'DESC' },
      lockTimeoutMs: LEASE_MS,
      concurrency: 4,
      summary: { workerId: 'worker-a', ran: 0, succeeded: 0, rescheduled: 0, snoozed: 0, failed: 0, released: 0, lost: 0, reason: 'stopped' },
      metrics: null,
      runUntil: null,
      useRunBudget: true,
      sleepMs: 5000,
      log,
      running: () => 1,
      prefetch: () => 0,
    });

    try {
      await claimsWaitForABeat();
    } finally {
      await settler.stop();
    }

    async function claimsWaitForABeat(): Promise<void> {
      expect(await claimer.claim(10), 'claimed while a beat fails').to.deep.equal([]);
      const waiting = await db.store.findPending(mineId!);
      expect(waiting!.lockedBy, 'the recovered task is still READY').to.equal(null);
      expect(waiting!.claimToken, 'and still holds the claim token this worker runs it under').to.equal(mine.claimToken);
      expect((await db.store.findPending(otherId!))!.lockedBy, 'the other task was not claimed either').to.equal(null);

      leaseOptions.store = db.store;
      const claimed = await claimer.claim(10);
      expect(claimed.map((t) => t.id), 'only the other task is claimed').to.deep.equal([otherId]);
      const back = await db.store.findPending(mineId!);
      expect(back!.lockedBy, "the recovered task is this worker's again").to.equal('worker-a');
      expect(back!.claimToken).to.equal(mine.claimToken);
      expect(back!.attempts, 'claimed once').to.equal(1);
      expect(leases.behind()).to.equal(false);
    }
  });
});

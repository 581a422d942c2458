/**
 * Workers that come back after their leases expired (issue 15, item 1), on every database: a worker
 * never recovers the leases it still holds, records the results it holds where its claim is intact,
 * and takes back a lease that another worker recovered but nobody re-claimed; after an outage it
 * leaves other workers time to renew before it recovers their leases. A result whose task was
 * re-claimed by another worker is still fenced out.
 *
 * SQLite has no network to cut: there the lapse is a clock jump past the lease (a stalled worker);
 * on MariaDB and PostgreSQL the workers also go through a TCP proxy that the tests cut.
 */
import { expect } from 'chai';
import { background, getResult } from '../../core/index.js';
import { ManualClock, resetClock, setClock } from '../../core/base/clock.js';
import { Worker, type WorkerOptions } from '../../core/worker/worker.js';
import { Maintenance } from '../../core/worker/maintenance.js';
import { contract, settingsFor, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { TcpProxy, throughProxy } from '../helpers/tcp-proxy.js';
import type { ClaimRequest } from '../../core/store/store.js';
import type { Settings } from '../../core/config/settings.js';

/** Gates by tag, opened by the test; runs counted by tag. */
const gates = new Map<string, { open: () => void; opened: Promise<void> }>();
const runs = new Map<string, number>();
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
const running = () => [...runs.values()].reduce((a, b) => a + b, 0) - finished;
let finished = 0;

const held = background({ name: 'outage.held' }, async function held(tag: string) {
  runs.set(tag, (runs.get(tag) ?? 0) + 1);
  try {
    await gateFor(tag).opened;
    return tag;
  } finally {
    finished++;
  }
});

const T0 = Date.UTC(2030, 5, 1, 8);

contract('workers coming back after their leases expired', (db) => {
  const clock = new ManualClock(T0);
  const claimReq = (workerId: string, at: ManualClock = clock): ClaimRequest => ({
    names: ['outage.held'],
    queues: null,
    excludeQueues: null,
    ordering: 'DESC',
    workerId,
    nowMs: at.now(),
    leaseMs: 5_000,
    limit: 1,
  });
  const maintenance = (workerId: string, at: ManualClock = clock) =>
    new Maintenance({ store: db.store, clock: at, log: recordingLogger(), workerId, names: [], maxAttemptsFor: () => 25, everyMs: 1000 });
  // Another worker's clock, past the first worker's leases. The first worker's own clock stays
  // put, so that it does not notice the lapse (and renew) before the other worker acts.
  const otherClock = () => new ManualClock(clock.now() + 6_000);
  const workerOptions = (extra: WorkerOptions = {}): WorkerOptions => ({ clock, sleep: 0.02, lockTimeout: 5, logger: recordingLogger(), ...extra });
  const openAll = () => {
    for (const tag of ['a', 'b', 'c', 'd', 'e', 'f']) gateFor(tag).open();
  };
  const completedCount = async () => {
    const [{ n }] = (await db.store.knex(db.store.tables.completed).count({ n: '*' })) as Array<{ n: unknown }>;
    return Number(n);
  };
  const expectEachOnce = async (ids: string[], tags: string[]) => {
    for (const tag of tags) expect(runs.get(tag), `runs of ${tag}`).to.equal(1);
    for (const id of ids) {
      const r = await getResult(id);
      expect(r.status, `task #${id}`).to.equal('SUCCESSFUL');
      expect(r.attempts).to.equal(1);
      expect(r.errors, `errors of #${id}`).to.deep.equal([]);
    }
  };

  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
    gates.clear();
    runs.clear();
    finished = 0;
  });
  afterEach(() => {
    openAll();
    resetClock();
  });

  it('a worker whose leases expired while it stalled never recovers its own running, prefetched or finished tasks: each runs once', async () => {
    const refs = [];
    for (const tag of ['a', 'b', 'c', 'd', 'e']) refs.push(await held(tag));
    const log = recordingLogger();
    // Heartbeats every 3 s of real time: the clock jump below expires every lease long before the
    // next one, while the worker's own recovery pass runs every 250 ms. A success waits 2 s for
    // others to share its write, so one result is held in the worker meanwhile.
    const w = await new Worker(workerOptions({ concurrency: 2, prefetch: 2, heartbeatInterval: 3, settleFlushMs: 2000, logger: log })).start(db.settings);
    try {
      await waitUntil(() => running() === 2, 'two running tasks');
      const first = [...runs.keys()][0]!;
      gateFor(first).open();
      await waitUntil(() => running() === 2 && finished === 1, 'one task finished, its result held, and the next one running');
      await waitUntil(async () => (await db.store.knex(db.store.tables.tasks).whereNotNull('locked_by').count({ n: '*' }).then((x) => Number((x as Array<{ n: unknown }>)[0]!.n))) === 5, 'five claimed tasks');
      clock.advance(6);
      // Several recovery passes of this worker go by while the result is still held.
      await new Promise((r) => setTimeout(r, 800));
      expect(await completedCount()).to.equal(0);
      expect(log.find('warn', /recovered a task/)).to.deep.equal([]);
      openAll();
      await waitUntil(async () => (await completedCount()) === 5, 'five completed tasks');
      await expectEachOnce(refs.map((r) => r.id), ['a', 'b', 'c', 'd', 'e']);
    } finally {
      await w.stop(0);
    }
  });

  it('a lease recovered by another worker but not re-claimed stays its holder’s: the heartbeat takes it back and the result is recorded once', async () => {
    const ref = await held('a');
    const log = recordingLogger();
    const w = await new Worker(workerOptions({ heartbeatInterval: 0.3, logger: log })).start(db.settings);
    try {
      await waitUntil(() => running() === 1, 'the task to start');
      const before = (await db.store.findPending(ref.id))!;
      // Another worker's recovery pass, before this worker's next heartbeat.
      expect(await maintenance('other-worker', otherClock()).recoverExpiredLeases()).to.equal(1);
      await waitUntil(() => log.find('warn', /took back the lease/).length === 1, 'the heartbeat to take the lease back');
      const back = (await db.store.findPending(ref.id))!;
      expect(back.claimToken).to.equal(before.claimToken);
      expect(back.lockedUntil).to.equal(clock.now() + 5_000);
      // The recovery's record of a lost run is gone: the run was not lost.
      expect(back.errors).to.deep.equal(before.errors);
      expect(back.lastError).to.equal(before.lastError);
      expect(back.runAt).to.equal(before.runAt);
      expect(log.find('warn', /took back the lease/)).to.have.length(1);
      openAll();
      await waitUntil(async () => (await completedCount()) === 1, 'the task to be recorded');
      await expectEachOnce([ref.id], ['a']);
      const r = await getResult(ref.id);
      expect(r.workerId).to.equal(w.id);
    } finally {
      await w.stop(0);
    }
  });

  it('a result is recorded when its lease was recovered but not re-claimed, even before a heartbeat took it back', async () => {
    const ref = await held('a');
    const [claimed] = await db.store.claim(claimReq('stalled-worker'));
    clock.advance(6);
    expect(await maintenance('other-worker').recoverExpiredLeases()).to.equal(1);
    const r = await db.store.completeMany([{ task: claimed!, finishedAt: clock.now(), returnValue: '"a"', successorAt: null }], clock.now());
    expect(r.done.map((c) => c.task.id)).to.deep.equal([ref.id]);
    expect((await getResult(ref.id)).status).to.equal('SUCCESSFUL');
  });

  it('a late result is still fenced when another worker recovered and re-claimed the task', async () => {
    const ref = await held('a');
    const log = recordingLogger();
    // No prefetch: with its one slot busy the first worker claims nothing, so it cannot take the
    // recovered task itself between the recovery and the other worker's claim below.
    const w = await new Worker(workerOptions({ heartbeatInterval: 2, prefetch: 0, logger: log })).start(db.settings);
    try {
      await waitUntil(() => running() === 1, 'the task to start');
      // Recovered and claimed again between two heartbeats of the first worker (every 2 s).
      const later = otherClock();
      expect(await maintenance('other-worker', later).recoverExpiredLeases()).to.equal(1);
      const [fresh] = await db.store.claim(claimReq('other-worker', later));
      expect(fresh!.id).to.equal(ref.id);
      await waitUntil(() => log.find('warn', /lease lost/).length === 1, 'the old worker to learn it lost the lease');
      expect(runs.get('a')).to.equal(1);
      const row = (await db.store.findPending(ref.id))!;
      expect([row.lockedBy, row.claimToken]).to.deep.equal(['other-worker', fresh!.claimToken]);
      const done = await db.store.completeMany([{ task: fresh!, finishedAt: clock.now(), returnValue: '"fresh"', successorAt: null }], clock.now());
      expect(done.done).to.have.length(1);
      const r = await getResult(ref.id);
      expect(r.returnValue).to.equal('fresh');
      expect(r.workerId).to.equal('other-worker');
    } finally {
      await w.stop(0);
    }
  });

  if (db.name !== 'sqlite') {
    describe('through a TCP proxy that is cut', () => {
      let proxy: TcpProxy;
      let cutSettings: Settings;
      // The claim's last request: PostgreSQL's one statement, MySQL/MariaDB's COMMIT after its UPDATE.
      const claimRequests = db.name === 'postgres' ? [/SET locked_by = \$\d+, claim_token/] : [/claim_token` = CONCAT\(/, /COMMIT/];
      beforeEach(async () => {
        const u = new URL(db.url);
        proxy = new TcpProxy(u.hostname, Number(u.port));
        await proxy.start();
        cutSettings = await settingsFor(throughProxy(db.url, proxy.port), db.settings.tablePrefix, db.dir);
      });
      afterEach(async () => {
        await proxy.stop();
      });

      it('one worker, an outage longer than lockTimeout while tasks run and results wait: every task runs once and ends SUCCESSFUL', async function () {
        this.timeout(30_000);
        const refs = [];
        for (const tag of ['a', 'b', 'c', 'd']) refs.push(await held(tag));
        const log = recordingLogger();
        const w = await new Worker(workerOptions({ concurrency: 2, prefetch: 2, heartbeatInterval: 1, logger: log })).start(cutSettings);
        try {
          await waitUntil(() => running() === 2, 'two running tasks');
          const running0 = [...runs.keys()];
          await waitUntil(async () => (await db.store.knex(db.store.tables.tasks).whereNotNull('locked_by').count({ n: '*' }).then((x) => Number((x as Array<{ n: unknown }>)[0]!.n))) === 4, 'four claimed tasks');
          proxy.cut();
          await waitUntil(() => log.find('warn', /database unreachable/).length === 1, 'the worker to notice the outage');
          // One task finishes during the outage: its result waits in the worker.
          gateFor(running0[0]!).open();
          await waitUntil(() => finished === 1, 'a task to finish during the outage');
          clock.advance(6);
          proxy.restore();
          await waitUntil(() => log.find('warn', /database reachable again/).length === 1, 'the worker to reach the database again');
          await new Promise((r) => setTimeout(r, 500));
          openAll();
          await waitUntil(async () => (await completedCount()) === 4, 'four completed tasks', 15_000);
          await expectEachOnce(refs.map((r) => r.id), ['a', 'b', 'c', 'd']);
          expect(log.find('warn', /recovered a task|result is discarded/)).to.deep.equal([]);
        } finally {
          await w.stop(0);
        }
      });

      it('a claim the server committed but never answered (the connection broke): once the database answers, its tasks are given back and each runs once, at attempt 1', async function () {
        this.timeout(30_000);
        const tags = ['a', 'b', 'c'];
        const refs = [];
        for (const tag of tags) refs.push(await held(tag));
        openAll();
        const log = recordingLogger();
        // Dark just after the claim left.
        proxy.blackHoleAfter(...claimRequests);
        // The manual clock never reaches the lease's end: only the give-back can free the tasks.
        const w = await new Worker(workerOptions({ concurrency: 4, logger: log })).start(cutSettings);
        try {
          const locked = async () =>
            Number(((await db.store.knex(db.store.tables.tasks).whereNotNull('locked_by').count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
          await waitUntil(async () => proxy.blackHoling && (await locked()) === 3, 'the claim to commit on the server, unanswered');
          expect(runs.size, 'tasks started before the answer').to.equal(0);
          // The connection breaks: the claim fails in the worker, which never learns what it took.
          proxy.cut();
          proxy.restore();
          await waitUntil(async () => (await completedCount()) === 3, 'three completed tasks', 15_000);
          await expectEachOnce(refs.map((r) => r.id), tags);
          expect(log.find('warn', /a claim the database did not answer had taken tasks/), 'the give-back line').to.have.length(1);
        } finally {
          await w.stop(0);
        }
      });

      it('a worker stopping after a claim the server committed but never answered gives its tasks back, attempt returned', async function () {
        this.timeout(30_000);
        for (const tag of ['a', 'b']) await held(tag);
        const log = recordingLogger();
        proxy.blackHoleAfter(...claimRequests);
        // A long poll: after the failed claim the worker waits, and the stop comes before its next claim.
        const w = await new Worker(workerOptions({ concurrency: 4, sleep: 30, logger: log })).start(cutSettings);
        const rows = () => db.store.knex(db.store.tables.tasks).select('locked_by', 'attempts');
        try {
          await waitUntil(async () => proxy.blackHoling && (await rows()).every((r) => r.locked_by !== null), 'the claim to commit on the server, unanswered');
          proxy.cut();
          await waitUntil(() => log.find('warn', /database unreachable/).length === 1, 'the worker to see its claim fail');
          proxy.restore();
        } finally {
          await w.stop(0);
        }
        expect(runs.size, 'tasks started').to.equal(0);
        expect((await rows()).map((r) => [r.locked_by, Number(r.attempts)])).to.deep.equal([
          [null, 0],
          [null, 0],
        ]);
        expect(log.find('warn', /a claim the database did not answer had taken tasks/), 'the give-back line').to.have.length(1);
      });

      it('two workers cut by the same outage: the first one back leaves the other time to renew, no task runs twice', async function () {
        this.timeout(30_000);
        const refs = [];
        for (const tag of ['a', 'b', 'c', 'd']) refs.push(await held(tag));
        const logA = recordingLogger();
        const logB = recordingLogger();
        // A recovers every 250 ms; B renews every 2 s (of real time) and holds the tasks.
        const b = await new Worker(workerOptions({ workerId: 'worker-b', concurrency: 4, prefetch: 0, heartbeatInterval: 2, logger: logB })).start(cutSettings);
        let a: Worker | null = null;
        try {
          await waitUntil(() => running() === 4, 'four tasks running in worker B');
          a = await new Worker(workerOptions({ workerId: 'worker-a', heartbeatInterval: 0.3, logger: logA })).start(cutSettings);
          proxy.cut();
          await waitUntil(() => logA.find('warn', /database unreachable/).length === 1 && logB.find('warn', /database unreachable/).length === 1, 'both workers to notice the outage');
          clock.advance(6);
          proxy.restore();
          await waitUntil(() => logA.find('warn', /database reachable again/).length === 1, 'worker A to reach the database again');
          // B's next heartbeat renews its leases; A must not have recovered them before it.
          await waitUntil(() => logB.find('warn', /database reachable again/).length === 1, 'worker B to reach the database again', 5_000);
          await new Promise((r) => setTimeout(r, 2500));
          expect(logA.find('warn', /recovered a task/)).to.deep.equal([]);
          openAll();
          await waitUntil(async () => (await completedCount()) === 4, 'four completed tasks', 15_000);
          await expectEachOnce(refs.map((r) => r.id), ['a', 'b', 'c', 'd']);
        } finally {
          await a?.stop(0);
          await b.stop(0);
        }
      });
    });
  }
});

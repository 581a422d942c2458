/**
 * The flow-control claim (store/claim.ts) on every database, driven straight through
 * Store.claim() with a FlowPlan as a worker would pass it: concurrency limits per queue, per task
 * name and per key (counted from live leases, so an expired lease frees its slot), rate limits
 * with a sliding window (whole scope and per key), keys taking turns, paused queues skipped by
 * both paths, and tasks held back left READY with no attempt counted.
 */
import { expect } from 'chai';
import type { Knex } from 'knex';
import { ManualClock, resetClock, setClock } from '../../core/base/clock.js';
import { emptyFlowPlan, type FlowPlan } from '../../core/store/claim.js';
import type { QueueLimits, TaskLimits } from '../../core/policy/flow.js';
import { taskHash } from '../../core/base/json.js';
import { errorRecord } from '../../core/errors.js';
import { plainTask } from '../../core/store/rows.js';
import type { TaskRow } from '../../core/types.js';
import { pruneRateStarts, setQueueLimits as setQueueLimitsRow } from '../../core/store/queues.js';
import { contract } from '../helpers/databases.js';
import { taskRows } from '../helpers/stored-rows.js';

const T0 = Date.UTC(2031, 6, 1, 12);
const NAMES = ['flow.a', 'flow.b'];

contract('flow-control claims', (db) => {
  const clock = new ManualClock(T0);
  let seq = 0;

  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
  });
  afterEach(() => resetClock());

  /** Inserts `n` due tasks; returns their ids in insertion order. */
  const add = async (n: number, o: { name?: string; queue?: string | null; key?: string | null; priority?: number; runAt?: number } = {}) => {
    const tasks = Array.from({ length: n }, () => {
      const args = JSON.stringify([++seq]);
      const name = o.name ?? 'flow.a';
      return plainTask({
        name,
        args,
        hash: taskHash(name, args),
        runAt: o.runAt ?? clock.now(),
        enqueuedAt: clock.now(),
        queue: o.queue ?? null,
        priority: o.priority ?? 0,
        concurrencyKey: o.key ?? null,
      });
    });
    return db.store.insertTasks(tasks);
  };

  const plan = (o: { paused?: string[]; queues?: Record<string, Partial<QueueLimits>>; tasks?: Record<string, TaskLimits> } = {}): FlowPlan => {
    const p = emptyFlowPlan();
    p.pausedQueues = new Set(o.paused ?? []);
    p.queueLimits = new Map(Object.entries(o.queues ?? {}).map(([k, v]) => [k, { paused: false, concurrency: null, rateLimit: null, ...v }]));
    p.taskLimits = new Map(Object.entries(o.tasks ?? {}));
    return p;
  };

  const claim = (p: FlowPlan, limit = 50, workerId = 'w1', leaseMs = 60_000): Promise<TaskRow[]> => {
    // Each claim looks for keyed tasks and for queues afresh (a worker looks at most every 250 ms
    // of real time, and after its process inserted tasks).
    p.keyedSeenAt = -Infinity;
    p.queuesSeenAt = -Infinity;
    p.plainEmptyAt = -Infinity;
    return db.store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId, nowMs: clock.now(), leaseMs, limit, flow: p });
  };

  /** A claim through the flow path first, with `ended` as the worker passes it. */
  const claimWith = (p: FlowPlan, workerId: string, o: { ended: ReadonlyMap<string, string>; keyChain?: number }): Promise<TaskRow[]> => {
    p.keyedSeenAt = -Infinity;
    p.flowFirst = true;
    return db.store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId, nowMs: clock.now(), leaseMs: 60_000, limit: 50, flow: p, ended: o.ended, keyChain: o.keyChain });
  };

  /** Claims through both paths (plain first, then flow first), as a worker's alternating claims do. */
  const claimBoth = async (p: FlowPlan, limit = 50, workerId = 'w1', leaseMs = 60_000): Promise<TaskRow[]> => {
    const rows = [...(await claim(p, limit, workerId, leaseMs))];
    if (rows.length < limit) rows.push(...(await claim(p, limit - rows.length, workerId, leaseMs)));
    return rows;
  };

  const complete = async (rows: TaskRow[]) => {
    const out = await db.store.completeMany(rows.map((task) => ({ task, finishedAt: clock.now(), returnValue: null, successorAt: null })), clock.now());
    expect(out.done).to.have.length(rows.length);
  };

  describe('concurrency limits', () => {
    it('a queue limit admits at most that many RUNNING tasks of the queue, and one more when one ends', async () => {
      await add(6, { queue: 'mail' });
      await add(2, { queue: 'other' });
      const p = plan({ queues: { mail: { concurrency: 2 } } });
      const first = await claimBoth(p);
      expect(first.filter((t) => t.queue === 'mail')).to.have.length(2);
      expect(first.filter((t) => t.queue === 'other')).to.have.length(2);
      expect(await claimBoth(p, 50, 'w2')).to.deep.equal([]);
      await complete(first.filter((t) => t.queue === 'mail').slice(0, 1));
      const next = await claimBoth(p, 50, 'w2');
      expect(next.map((t) => t.queue)).to.deep.equal(['mail']);
    });

    it('a task that ended on the claiming worker, its result not yet written, holds no slot of that worker\'s claims', async () => {
      await add(3, { key: 'user:1' });
      const p = plan();
      const [first] = await claim(p, 50, 'w1');
      expect(first).to.not.equal(undefined);
      // Still RUNNING in the table: no other task of its key for anyone.
      expect(await claimBoth(p, 50, 'w1')).to.deep.equal([]);
      // Another worker does not know it ended: the slot stays held for it.
      const ended = new Map([[first!.id, first!.claimToken!]]);
      expect(await claimWith(p, 'w2', { ended })).to.deep.equal([]);
      // A claim token that is not the lease's own (an older claim of the task) frees nothing.
      expect(await claimWith(p, 'w1', { ended: new Map([[first!.id, 'another-claim:1']]) })).to.deep.equal([]);
      const next = await claimWith(p, 'w1', { ended });
      expect(next.map((t) => t.concurrencyKey)).to.deep.equal(['user:1']);
      expect(next[0]!.id).to.not.equal(first!.id);
      // Both now hold the key in the table: the next one waits for either end to be written.
      expect(await claimWith(p, 'w1', { ended })).to.deep.equal([]);
    });

    it('a chain (keyChain): up to that many tasks of a key no other worker holds, none of a key another worker holds', async () => {
      await add(6, { key: 'a' });
      await add(6, { key: 'b' });
      await add(2, { key: 'c' });
      const p = plan();
      // Another worker holds key a (its first task).
      const [held] = await claim(plan(), 1, 'w2');
      expect(held!.concurrencyKey).to.equal('a');
      const other = await claimWith(p, 'w3', { ended: new Map(), keyChain: 4 });
      const by = (rows: TaskRow[], key: string) => rows.filter((t) => t.concurrencyKey === key).length;
      // a is held by w2: nothing of it; b and c: up to 4 each, in turns.
      expect([by(other, 'a'), by(other, 'b'), by(other, 'c')]).to.deep.equal([0, 4, 2]);
      // w3 holds 4 of b: the chain is full for it, and b is held for everyone else.
      expect(by(await claimWith(p, 'w3', { ended: new Map(), keyChain: 4 }), 'b')).to.equal(0);
      expect(await claimWith(plan(), 'w4', { ended: new Map(), keyChain: 4 })).to.deep.equal([]);
      // Two of b ended on w3: two more for it.
      const ended = new Map(other.filter((t) => t.concurrencyKey === 'b').slice(0, 2).map((t) => [t.id, t.claimToken!] as [string, string]));
      expect(by(await claimWith(p, 'w3', { ended, keyChain: 4 }), 'b')).to.equal(2);
      // No chain where another limit applies (here a limit on the task name): one per key.
      const limited = plan({ tasks: { 'flow.b': { concurrency: 10 } } });
      await add(3, { key: 'd' });
      expect(by(await claimWith(limited, 'w5', { ended: new Map(), keyChain: 4 }), 'd')).to.equal(1);
    });

    if (db.name === 'sqlite') {
      it('SQLite: without the flow lock, a claim leaves out a task whose name and key another worker came to hold after its reads', async () => {
        // SQLite writes one statement at a time, so where the only limit is one per key the claim
        // takes no lock (store/flow-claim.ts): its reads propose, its claiming statement decides.
        // Here w2 claims a task of key a between w1's reads and w1's claiming statement.
        const [a1] = await add(1, { key: 'a', priority: 5 });
        const [a2] = await add(1, { key: 'a', priority: 0 });
        const [b1] = await add(1, { key: 'b' });
        let interjected: TaskRow[] | null = null;
        const store = Object.create(db.store) as typeof db.store;
        Object.defineProperty(store, 'dialect', {
          value: {
            ...db.store.dialect,
            claim: async (...args: Parameters<typeof db.store.dialect.claim>) => {
              if (interjected === null) {
                // w2 takes key a through its own claim, lowest priority first: a2, not a1.
                const other = plan();
                other.keyedSeenAt = -Infinity;
                other.flowFirst = true;
                interjected = await db.store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'ASC', workerId: 'w2', nowMs: clock.now(), leaseMs: 60_000, limit: 1, flow: other });
              }
              return db.store.dialect.claim(...args);
            },
          },
        });
        const p = plan();
        p.flowFirst = true;
        const mine = await store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w1', nowMs: clock.now(), leaseMs: 60_000, limit: 50, flow: p });
        expect(interjected!.map((t) => t.id), 'w2 holds a2').to.deep.equal([a2]);
        expect(mine.map((t) => t.id), 'w1 proposed a1 and b1, and claimed only b1').to.deep.equal([b1]);
        const a1Row = (await db.store.knex(db.store.tables.tasks).where('id', a1).first()) as { locked_by: unknown; attempts: unknown };
        expect([a1Row.locked_by, Number(a1Row.attempts)], 'a1 stays READY, no attempt counted').to.deep.equal([null, 0]);
      });

      it('SQLite: without the flow lock, a claim leaves out a task another worker claimed and snoozed after its reads', async () => {
        const [a1] = await add(1, { key: 'a' });
        let snoozed = false;
        const store = Object.create(db.store) as typeof db.store;
        Object.defineProperty(store, 'dialect', {
          value: {
            ...db.store.dialect,
            claim: async (...args: Parameters<typeof db.store.dialect.claim>) => {
              if (!snoozed) {
                snoozed = true;
                // w2 claims a1 and its attempt snoozes for an hour: READY again, due later.
                const other = plan();
                other.keyedSeenAt = -Infinity;
                other.flowFirst = true;
                const [row] = await db.store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w2', nowMs: clock.now(), leaseMs: 60_000, limit: 1, flow: other });
                expect(row?.id).to.equal(a1);
                expect(await db.store.snooze(row!, clock.now() + 3_600_000)).to.equal('ok');
              }
              return db.store.dialect.claim(...args);
            },
          },
        });
        const p = plan();
        p.flowFirst = true;
        const mine = await store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w1', nowMs: clock.now(), leaseMs: 60_000, limit: 50, flow: p });
        expect(snoozed, 'the snooze came between the read and the claim').to.equal(true);
        expect(mine.map((t) => t.id), 'the snoozed task is not due').to.deep.equal([]);
        const row = (await db.store.knex(db.store.tables.tasks).where('id', a1).first()) as { locked_by: unknown; run_at: unknown };
        expect([row.locked_by, Number(row.run_at)]).to.deep.equal([null, clock.now() + 3_600_000]);
      });
    }

    it('counts only live leases: a slot held by an expired lease is free again', async () => {
      await add(3, { queue: 'mail' });
      const p = plan({ queues: { mail: { concurrency: 1 } } });
      const [held] = await claimBoth(p, 50, 'dead', 10_000);
      expect(held).to.not.equal(undefined);
      clock.advance(9.9);
      expect(await claimBoth(p, 50, 'w2')).to.deep.equal([]);
      clock.advance(0.2);
      const after = await claimBoth(p, 50, 'w2');
      expect(after).to.have.length(1);
      expect(after[0]!.id).to.not.equal(held!.id);
    });

    it('a task-name limit counts every queue, and leaves other names alone', async () => {
      await add(3, { name: 'flow.a', queue: 'q1' });
      await add(3, { name: 'flow.a', queue: 'q2' });
      await add(3, { name: 'flow.b', queue: 'q1' });
      const p = plan({ tasks: { 'flow.a': { concurrency: 2 } } });
      const rows = await claimBoth(p);
      expect(rows.filter((t) => t.name === 'flow.a')).to.have.length(2);
      expect(rows.filter((t) => t.name === 'flow.b')).to.have.length(3);
      expect(await claimBoth(p, 50, 'w2')).to.deep.equal([]);
    });

    it('a key admits one RUNNING task by default, and concurrencyLimit of them when set', async () => {
      await add(3, { key: 'user:1' });
      await add(3, { key: 'user:2' });
      await add(3, { name: 'flow.b', key: 'user:1' });
      const p = plan({ tasks: { 'flow.b': { concurrencyLimit: 2 } } });
      const rows = await claimBoth(p);
      const by = (name: string, key: string) => rows.filter((t) => t.name === name && t.concurrencyKey === key).length;
      expect([by('flow.a', 'user:1'), by('flow.a', 'user:2'), by('flow.b', 'user:1')]).to.deep.equal([1, 1, 2]);
      expect(await claimBoth(p, 50, 'w2')).to.deep.equal([]);
    });

    it('keys compare exactly: case and trailing spaces make different keys', async () => {
      await add(2, { key: 'K' });
      await add(2, { key: 'k' });
      await add(2, { key: 'k ' });
      const rows = await claimBoth(plan());
      expect(rows.map((t) => t.concurrencyKey).sort()).to.deep.equal(['K', 'k', 'k ']);
    });

    it('tasks held back stay READY: no attempt counted, no error, no lease', async () => {
      await add(3, { queue: 'mail' });
      const p = plan({ queues: { mail: { concurrency: 1 } } });
      const [one] = await claimBoth(p);
      const rows = await taskRows(db);
      for (const r of rows.filter((x) => String(x.id) !== one!.id)) {
        expect(r.locked_by).to.equal(null);
        expect(Number(r.attempts)).to.equal(0);
        expect(r.last_error).to.equal(null);
      }
    });

    it('a limited queue\'s backlog does not hide the unlimited tasks of other queues, nor their own limited tasks', async () => {
      await add(60, { queue: 'slow', priority: 5 });
      await add(3, { queue: 'fast' });
      await add(2, { queue: null });
      const p = plan({ queues: { slow: { concurrency: 1 } } });
      const rows = await claimBoth(p, 10);
      expect(rows.filter((t) => t.queue === 'slow')).to.have.length(1);
      expect(rows.filter((t) => t.queue !== 'slow')).to.have.length(5);
    });
  });

  describe('rate limits', () => {
    it('admits at most limit starts in any window of period seconds (a sliding window)', async () => {
      await add(20, { queue: 'api' });
      const p = plan({ queues: { api: { rateLimit: { limit: 3, period: 2 } } } });
      expect(await claimBoth(p, 1)).to.have.length(1); // t0
      clock.advance(1);
      expect(await claimBoth(p, 10)).to.have.length(2); // t0+1: 3 in the window
      expect(await claimBoth(p, 10)).to.have.length(0);
      clock.advance(0.999);
      expect(await claimBoth(p, 10)).to.have.length(0); // t0+1.999: still 3
      clock.advance(0.001);
      expect(await claimBoth(p, 10)).to.have.length(1); // t0+2: the start at t0 left the window
      clock.advance(0.5);
      expect(await claimBoth(p, 10)).to.have.length(0); // a fixed window would let 3 more through here
      clock.advance(0.5);
      expect(await claimBoth(p, 10)).to.have.length(2); // t0+3: the two of t0+1 left
      // Starts are counted whatever became of the attempts: completing them frees nothing.
      const started = (await taskRows(db)).filter((r) => r.locked_by !== null);
      expect(started).to.have.length(6);
    });

    it('a held-back task stays READY with no attempt counted and runs when the window reopens', async () => {
      const [a, b] = await add(2, { name: 'flow.b' });
      const p = plan({ tasks: { 'flow.b': { rateLimit: { limit: 1, period: 60 } } } });
      const first = await claimBoth(p);
      expect(first.map((t) => t.id)).to.deep.equal([a]);
      const held = (await taskRows(db)).find((r) => String(r.id) === b)!;
      expect([held.locked_by, Number(held.attempts), held.last_error]).to.deep.equal([null, 0, null]);
      clock.advance(60);
      expect((await claimBoth(p)).map((t) => t.id)).to.deep.equal([b]);
    });

    it('perKey counts each key on its own', async () => {
      await add(3, { key: 't1', name: 'flow.b' });
      await add(3, { key: 't2', name: 'flow.b' });
      const p = plan({ tasks: { 'flow.b': { rateLimit: { limit: 2, period: 10, perKey: true }, concurrencyLimit: 10 } } });
      const rows = await claimBoth(p);
      expect(rows.filter((t) => t.concurrencyKey === 't1')).to.have.length(2);
      expect(rows.filter((t) => t.concurrencyKey === 't2')).to.have.length(2);
      expect(await claimBoth(p)).to.deep.equal([]);
    });

    it('counts starts across workers, and a retry\'s start like a first one', async () => {
      await add(4, { queue: 'api' });
      const p1 = plan({ queues: { api: { rateLimit: { limit: 2, period: 10 } } } });
      const p2 = plan({ queues: { api: { rateLimit: { limit: 2, period: 10 } } } });
      const [t] = await claimBoth(p1, 1, 'w1');
      // Its attempt fails and it is due again at once: its next start counts too.
      expect(await db.store.retry(t!, clock.now(), errorRecord(new Error('boom'), 1, clock.now(), 'w1'))).to.equal('ok');
      const again = await claimBoth(p2, 10, 'w2');
      expect(again).to.have.length(1);
      expect(await claimBoth(p1, 10, 'w1')).to.deep.equal([]);
    });
  });

  describe('rate limits across workers whose clocks were read at different times', () => {
    // A worker reads its clock before it claims, and a claim may wait for the flow lock while
    // other workers claim (or its clock may run behind theirs): claims reach the limiter out of
    // the order of their times. Starts that one claim drops from its window, or that the hourly
    // prune deletes, must still count for a claim whose time was read before.
    const limits = { rateLimit: { limit: 5, period: 2 } };
    /** The most claim times (started_at) within any window of `periodMs`. */
    const busiest = (rows: readonly TaskRow[], periodMs: number) => {
      const at = rows.map((t) => t.lockedAt!).sort((x, y) => x - y);
      let most = 0;
      for (let i = 0, j = 0; i < at.length; i++) {
        while (j < at.length && at[j]! < at[i]! + periodMs) j++;
        most = Math.max(most, j - i);
      }
      return most;
    };

    it('a claim whose time was read before another worker\'s later claim still counts the starts that claim dropped', async () => {
      await add(20, { queue: 'api' });
      const p = plan({ queues: { api: limits } });
      const rows = [...(await claimBoth(p, 3, 'w1'))]; // 3 at T0
      clock.set(T0 + 10);
      rows.push(...(await claimBoth(p, 10, 'w1'))); // 2 more: the window is full
      clock.set(T0 + 2005);
      // w2's claim drops the three starts of T0 from its window (T0 + 5, T0 + 2005].
      rows.push(...(await claimBoth(plan({ queues: { api: limits } }), 1, 'w2')));
      // w3 read its clock at T0 + 1999 and reaches the limiter only now: its window holds
      // the five starts of T0 and T0 + 10, whatever w2 deleted.
      clock.set(T0 + 1999);
      const late = await claimBoth(plan({ queues: { api: limits } }), 10, 'w3');
      rows.push(...late);
      expect(busiest(rows, 2000), 'starts in the busiest 2 s window').to.be.at.most(5);
      // Its window ends at the time of w2's claim, the latest recorded: two places are free there.
      expect(late.map((t) => t.lockedAt), 'claim times of w3\'s tasks').to.deep.equal([T0 + 2005, T0 + 2005]);
    });

    it('a claim whose time was read before the hourly prune still counts the starts it deleted', async () => {
      await add(20, { queue: 'api' });
      await setQueueLimitsRow(db.store, 'api', limits, null, T0);
      const p = plan({ queues: { api: limits } });
      const rows = [...(await claimBoth(p, 10, 'w1'))]; // 5 at T0
      expect(rows).to.have.length(5);
      // Another worker's registration prunes, by its clock, the starts older than 2 s.
      await pruneRateStarts(db.store, T0 + 2001);
      clock.set(T0 + 1999);
      rows.push(...(await claimBoth(plan({ queues: { api: limits } }), 10, 'w2')));
      expect(busiest(rows, 2000), 'starts in the busiest 2 s window').to.be.at.most(5);
    });

    it('a claim counts its window at the worker\'s clock read once it holds the lock, not at the time read before it waited', async () => {
      await add(6, { queue: 'api' });
      const p = plan({ queues: { api: { rateLimit: { limit: 2, period: 2 } } } });
      expect(await claimBoth(p, 2)).to.have.length(2); // 2 at T0
      p.keyedSeenAt = -Infinity;
      const rows = await db.store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w2', nowMs: T0 + 1999, now: () => T0 + 2000, leaseMs: 60_000, limit: 2, flow: p });
      expect(rows.map((t) => t.lockedAt)).to.deep.equal([T0 + 2000, T0 + 2000]);
    });

    it('four workers claiming with clocks read up to 1.5 s late, and prunes between them, never put more than limit starts in a window', async () => {
      await add(200, { queue: 'api' });
      await setQueueLimitsRow(db.store, 'api', limits, null, T0);
      const plans = ['w1', 'w2', 'w3', 'w4'].map(() => plan({ queues: { api: limits } }));
      // A fixed sequence (a seeded generator), so that a failure can be replayed.
      let seed = 17;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const rows: TaskRow[] = [];
      let real = T0;
      for (let step = 0; step < 80; step++) {
        real += Math.floor(random() * 250);
        if (random() < 0.1) {
          await pruneRateStarts(db.store, real);
          continue;
        }
        const w = Math.floor(random() * 4);
        clock.set(real - Math.floor(random() * 1500));
        rows.push(...(await claimBoth(plans[w]!, 1 + Math.floor(random() * 4), `w${w + 1}`)));
      }
      expect(rows.length, 'starts').to.be.at.least(20);
      expect(busiest(rows, 2000), 'starts in the busiest 2 s window').to.be.at.most(5);
    });
  });

  describe('recorded starts', () => {
    const starts = async () => (await db.store.knex(db.store.tables.rateStarts).select('limiter', 'started_at').orderBy('id')).map((r) => [r.limiter, Number(r.started_at)]);

    it('a limiter drops its starts that left the window when it records new ones', async () => {
      await add(4, { queue: 'api' });
      const p = plan({ queues: { api: { rateLimit: { limit: 2, period: 1 } } } });
      expect(await claimBoth(p, 2)).to.have.length(2);
      clock.advance(1);
      expect(await claimBoth(p, 2)).to.have.length(2);
      expect(await starts()).to.deep.equal([
        ['queue api#rate', T0 + 1000],
        ['queue api#rate', T0 + 1000],
      ]);
    });

    it('pruneRateStarts deletes the starts older than the longest period of the queues and of the registered workers\' definitions', async () => {
      await db.store.knex(db.store.tables.rateStarts).insert([
        { limiter: 'gone#rate', started_at: T0 - 3_600_001 },
        { limiter: 'gone#rate', started_at: T0 - 60_000 },
        { limiter: 'task x#rate', started_at: T0 - 1000 },
      ]);
      expect(await pruneRateStarts(db.store, T0)).to.equal(3);
      await db.store.knex(db.store.tables.rateStarts).insert([
        { limiter: 'gone#rate', started_at: T0 - 3_600_001 },
        { limiter: 'gone#rate', started_at: T0 - 60_000 },
        { limiter: 'task x#rate', started_at: T0 - 1000 },
      ]);
      await setQueueLimitsRow(db.store, 'api', { rateLimit: { limit: 5, period: 2 } }, null, T0);
      await db.store.knex(db.store.tables.workers).insert({
        id: 'w', host: 'h', names: '["x"]', limits: JSON.stringify({ x: { rateLimit: { limit: 1, period: 3600 } } }), concurrency: 1, started_at: T0, heartbeat_at: T0, heartbeat_ms: 1000,
      });
      expect(await pruneRateStarts(db.store, T0)).to.equal(1);
      expect((await starts()).map((r) => r[1])).to.deep.equal([T0 - 60_000, T0 - 1000]);
    });
  });

  describe('keys take turns', () => {
    it('a key with a large backlog gets one turn per round like a key with a few tasks', async () => {
      await add(30, { key: 'big' });
      await add(3, { key: 'small' });
      const p = plan({ tasks: { 'flow.a': { concurrencyLimit: 100 } } });
      const rows = await claim(p, 6);
      expect(rows.map((t) => t.concurrencyKey).sort()).to.deep.equal(['big', 'big', 'big', 'small', 'small', 'small']);
    });

    it('the next claim starts with the key after the last one served', async () => {
      for (const k of ['a', 'b', 'c', 'd']) await add(3, { key: k });
      const p = plan({ tasks: { 'flow.a': { concurrencyLimit: 100 } } });
      const keys: string[] = [];
      for (let i = 0; i < 6; i++) keys.push(...(await claim(p, 1)).map((t) => t.concurrencyKey!));
      expect(keys).to.deep.equal(['a', 'b', 'c', 'd', 'a', 'b']);
    });

    it('priority orders the tasks of one key', async () => {
      const [low] = await add(1, { key: 'k', priority: 0 });
      const [high] = await add(1, { key: 'k', priority: 9 });
      const p = plan();
      expect((await claim(p, 5)).map((t) => t.id)).to.deep.equal([high]);
      void low;
    });

    it('due keyed tasks are found even when more keys than one claim looks at hold only tasks not yet due', async () => {
      // 40 keys whose only task runs tomorrow sort before the one key with a due task.
      for (let i = 0; i < 40; i++) await add(1, { key: `a${String(i).padStart(2, '0')}`, runAt: T0 + 86_400_000 });
      const [due] = await add(1, { key: 'zz' });
      expect((await claim(plan(), 1)).map((t) => t.id)).to.deep.equal([due]);
    });

    it('due keyed tasks are found even when more keys than one claim looks at are full', async () => {
      // 40 keys each with a task running and one waiting; then one free key.
      for (let i = 0; i < 40; i++) await add(2, { key: `a${String(i).padStart(2, '0')}` });
      const p = plan();
      expect(await claim(p, 40, 'w0')).to.have.length(40);
      const [free] = await add(1, { key: 'zz' });
      // Another worker, whose turns start at the first key.
      expect((await claim(plan(), 1, 'w1')).map((t) => t.id)).to.deep.equal([free]);
    });
  });

  if (db.name === 'mysql') {
    it('MySQL/MariaDB: the due keys are listed with a seek per key, not by reading every waiting task', async () => {
      // 2,000 waiting tasks over 10 keys. Through the claim index (or any walk MariaDB runs as a
      // scan) the list reads every entry; through tasks_keys (migration 011) a few per key.
      for (let k = 0; k < 10; k++) await add(200, { key: `k${k}` });
      await db.store.knex.raw(`ANALYZE TABLE ${db.store.tables.tasks}`);
      const reads = async (trx: Knex.Transaction) => {
        const [rows] = (await trx.raw(`SHOW SESSION STATUS LIKE 'Handler_read%'`)) as [Array<{ Variable_name: string; Value: string }>];
        return rows.reduce((sum, r) => sum + Number(r.Value), 0);
      };
      await db.store.tx(async (trx) => {
        const before = await reads(trx);
        const listed = db.store.dialect.dueKeys!(db.store.tables.tasks, 'k3', null, 500, clock.now());
        const keys = db.store.dialect.rows(await trx.raw(listed.sql, listed.bindings)).map((r) => String(r.name));
        const read = (await reads(trx)) - before;
        expect(keys).to.deep.equal(['k4', 'k5', 'k6', 'k7', 'k8', 'k9']);
        expect(read, 'index entries read').to.be.below(100);
      });
    });
  }

  describe('paused queues', () => {
    it('keyed tasks of other queues are claimed even when more keys than one claim looks at are in a paused queue', async () => {
      for (let i = 0; i < 40; i++) await add(1, { queue: 'p', key: `a${String(i).padStart(2, '0')}` });
      const [other] = await add(1, { queue: 'q', key: 'zz' });
      expect((await claim(plan({ paused: ['p'] }), 1)).map((t) => t.id)).to.deep.equal([other]);
    });

    it('neither path claims from a paused queue; other queues and tasks without a queue are claimed', async () => {
      await add(5, { queue: 'p', priority: 9 });
      await add(2, { queue: 'p', key: 'k1', priority: 9 });
      await add(2, { queue: 'q' });
      await add(1, { queue: 'q', key: 'k2' });
      await add(2, { queue: null });
      const p = plan({ paused: ['p'] });
      const rows = await claimBoth(p, 3);
      rows.push(...(await claimBoth(p)));
      expect(rows.filter((t) => t.queue === 'p')).to.deep.equal([]);
      expect(rows).to.have.length(5);
    });

    it('beside a paused queue, the queues holding tasks are listed at most once per 250 ms, and again once inserts were heard', async () => {
      await add(20, { queue: 'p' });
      await add(5, { queue: 'q' });
      const p = plan({ paused: ['p'] });
      // The list of queues: a recursive statement, or on MySQL/MariaDB a seek per queue.
      const isList = (sql: string) => /WITH RECURSIVE q\(name\)/.test(sql) || /^select `queue` from .* order by `queue` asc limit/i.test(sql);
      let lists = 0;
      const onQuery = (q: { sql: string }) => {
        if (isList(q.sql)) lists++;
      };
      const knex = db.store.knex;
      knex.on('query', onQuery);
      try {
        const started = Date.now();
        const claimed: TaskRow[] = [];
        for (let i = 0; i < 5; i++) {
          p.flowFirst = false; // the plain path, which lists the queues
          claimed.push(...(await db.store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w1', nowMs: clock.now(), leaseMs: 60_000, limit: 1, flow: p })));
        }
        const elapsed = Date.now() - started;
        expect(claimed.map((t) => t.queue)).to.deep.equal(['q', 'q', 'q', 'q', 'q']);
        // On MySQL/MariaDB one list is a statement per queue (and one more that finds none).
        const perList = db.name === 'mysql' ? 3 : 1;
        expect(lists / perList, `lists in ${elapsed} ms of claims`).to.be.at.least(1).and.at.most(1 + Math.floor(elapsed / 250));
        // Tasks of a queue the last list did not hold: found once the worker hears of inserts.
        const [r] = await add(1, { queue: 'r', priority: 5 });
        p.queuesSeenAt = -Infinity; // what FlowState.tasksCreated() does
        p.flowFirst = false;
        const next = await db.store.claim({ names: NAMES, queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w1', nowMs: clock.now(), leaseMs: 60_000, limit: 1, flow: p });
        expect(next.map((t) => t.id)).to.deep.equal([r]);
      } finally {
        knex.off('query', onQuery);
      }
    });
  });
});

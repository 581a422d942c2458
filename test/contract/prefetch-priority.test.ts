/**
 * Prefetch never inverts priorities (issue 15, item 5), on every database: a task of higher
 * priority enqueued by another connection while a worker's slot is busy and its prefetch buffer
 * holds lower-priority tasks runs next, before the prefetched ones; the lowest prefetched task is
 * given back meanwhile, and every task still runs once.
 */
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { background, getResult, schedule } from '../../core/index.js';
import { ManualClock, resetClock, setClock } from '../../core/base/clock.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { plainTask } from '../../core/store/rows.js';
import { taskHash } from '../../core/base/json.js';
import { recordingLogger } from '../helpers/log.js';

const started: string[] = [];
let release!: () => void;
let released = new Promise<void>((r) => (release = r));

const long = background({ name: 'prio.long' }, async function long() {
  started.push('long');
  await released;
  return 'long';
});
const quick = background({ name: 'prio.quick' }, function quick(tag: string) {
  started.push(tag);
  return tag;
});

const T0 = Date.UTC(2030, 5, 1, 8);

/** A connection of its own, as another process would have (never the store's pool). */
function otherConnection(url: string): Knex {
  if (url.startsWith('sqlite:')) return knexFactory({ client: 'sqlite3', connection: { filename: url.slice('sqlite:'.length) }, useNullAsDefault: true });
  return knexFactory({ client: url.startsWith('postgres') ? 'pg' : 'mysql2', connection: url });
}

contract('prefetch and priorities', (db) => {
  const clock = new ManualClock(T0);

  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
    started.length = 0;
    released = new Promise<void>((r) => (release = r));
  });
  afterEach(() => {
    release();
    resetClock();
  });

  for (const ordering of ['DESC', 'ASC'] as const) {
    it(`runs a higher-priority task enqueued meanwhile by another connection before the prefetched ones (${ordering})`, async () => {
      // DESC: priority 10 outranks 0 (the long task has 1); ASC: -10 outranks 0 (the long task -1).
      const sign = ordering === 'DESC' ? 1 : -1;
      const refs = [await long(schedule(0, { priority: sign }))];
      for (let i = 1; i <= 8; i++) refs.push(await quick(`q${i}`, schedule(0, { priority: 0 })));
      const settings = { ...db.settings, priorityOrdering: ordering };
      const w = await new Worker({ clock, sleep: 0.05, lockTimeout: 30, heartbeatInterval: 1, concurrency: 1, prefetch: 8, logger: recordingLogger() }).start(settings);
      const other = otherConnection(db.url);
      try {
        await waitUntil(() => started.length === 1, 'the long task to start');
        await waitUntil(async () => (await db.store.knex(db.store.tables.tasks).whereNotNull('locked_by').count({ n: '*' }).then((x) => Number((x as Array<{ n: unknown }>)[0]!.n))) === 9, 'nine claimed tasks');
        const row = {
          name: 'prio.quick',
          args: '["urgent"]',
          hash: 'u'.repeat(40),
          priority: 10 * sign,
          run_at: clock.now(),
          scheduled_at: clock.now(),
          enqueued_at: clock.now(),
        };
        await other(db.store.tables.tasks).insert(row);
        // The prefetched tasks have waited longer than the recheck interval (min(sleep, 0.1 s)).
        await new Promise((r) => setTimeout(r, 150));
        release();
        await waitUntil(async () => {
          const [{ n }] = (await db.store.knex(db.store.tables.completed).count({ n: '*' })) as Array<{ n: unknown }>;
          return Number(n) === 10;
        }, 'ten completed tasks');
        expect(started[0]).to.equal('long');
        expect(started[1]).to.equal('urgent');
        expect([...started].sort()).to.deep.equal(['long', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8', 'urgent']);
        // The prefetched tasks still run in their order, and each once, with one attempt.
        expect(started.slice(2)).to.deep.equal(['q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8']);
        for (const ref of refs) {
          const r = await getResult(ref.id);
          expect([r.status, r.attempts], `task #${ref.id}`).to.deep.equal(['SUCCESSFUL', 1]);
        }
      } finally {
        await other.destroy();
        await w.stop(0);
      }
    });
  }

  it('the look for due tasks that rank above the prefetched ones (Store.outranked) sees unkeyed and keyed tasks, due and in unpaused queues only', async () => {
    const add = (o: { priority: number; key?: string; queue?: string; runAt?: number }) => {
      const args = JSON.stringify([o.priority, o.key ?? null, o.queue ?? null, o.runAt ?? 0]);
      return db.store.insertTasks([
        plainTask({ name: 'prio.quick', args, hash: taskHash('prio.quick', args), runAt: o.runAt ?? clock.now(), enqueuedAt: clock.now(), queue: o.queue ?? null, priority: o.priority, concurrencyKey: o.key ?? null }),
      ]);
    };
    const f = (ordering: 'ASC' | 'DESC') => ({ names: ['prio.quick'], queues: null, excludeQueues: null, ordering });
    const above = (floor: number, ordering: 'ASC' | 'DESC' = 'DESC', paused = new Set<string>()) => db.store.outranked(f(ordering), clock.now(), floor, paused);
    // A backlog at priority 0, keyed and unkeyed: nothing ranks above 0.
    for (let i = 0; i < 20; i++) await add({ priority: 0 });
    await add({ priority: 0, key: 'k' });
    expect(await above(0)).to.equal(false);
    // Above it but not due, or in a paused queue: still nothing.
    await add({ priority: 5, runAt: clock.now() + 60_000 });
    await add({ priority: 5, key: 'k', queue: 'p' });
    expect(await above(0, 'DESC', new Set(['p']))).to.equal(false);
    // The keyed one in the queue once it is not paused.
    expect(await above(0)).to.equal(true);
    expect(await above(5)).to.equal(false);
    // An unkeyed one above 0 (and, with ASC ordering, one below 0 ranks above).
    await add({ priority: 3 });
    expect(await above(0, 'DESC', new Set(['p']))).to.equal(true);
    expect(await above(0, 'ASC')).to.equal(false);
    await add({ priority: -1, key: 'k2' });
    expect(await above(0, 'ASC')).to.equal(true);
  });
});

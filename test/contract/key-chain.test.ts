/**
 * Chains of a key's tasks on one worker, on every database (issue 17): where the only limit is one
 * task per key, a worker claims several tasks of a key no other worker holds and starts them one
 * at a time, each once the one before it ended. The ones waiting behind a running task of their
 * key do not fill the worker's buffer: a free slot still takes other tasks.
 */
import { expect } from 'chai';
import { background } from '../../core/index.js';
import { ManualClock, resetClock, setClock } from '../../core/base/clock.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';

const events: string[] = [];
let releaseFirst: () => void = () => {};

const chained = background({ name: 'chain.task', concurrencyKey: (key: string, _n: number) => key }, async function chainTask(key: string, n: number) {
  events.push(`S ${key}${n}`);
  if (key === 'K' && n === 1) await new Promise<void>((r) => (releaseFirst = r));
  events.push(`E ${key}${n}`);
});

const T0 = Date.UTC(2031, 9, 1, 9);

contract('chains of a key\'s tasks on one worker', (db) => {
  const clock = new ManualClock(T0);
  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
    events.length = 0;
  });
  afterEach(() => resetClock());

  it('takes a key\'s tasks together, starts them one after another, and a free slot still takes another key\'s task', async function () {
    this.timeout(30_000);
    await chained.bulk([
      ['K', 1],
      ['K', 2],
    ]);
    // Concurrency 2, a prefetch of 1: the claim takes K1 and K2 (a chain); K2 waits behind K1.
    const w = await new Worker({ clock, sleep: 0.05, concurrency: 2, prefetch: 1, names: ['chain.task'], logger: recordingLogger() }).start(db.settings);
    try {
      await waitUntil(() => events.includes('S K1'), 'K1 to start', 10_000);
      const held = (await db.store.knex(db.store.tables.tasks).whereNotNull('locked_by').select('args')) as Array<{ args: string }>;
      expect(held.map((r) => r.args).sort(), 'tasks claimed while K1 runs').to.deep.equal(['["K",1]', '["K",2]']);
      // K2 is in the buffer but may not start: the free slot takes M1, enqueued now.
      await chained('M', 1);
      await waitUntil(() => events.includes('E M1'), 'M1 to run while K1 runs', 10_000);
      expect(events).to.not.include('S K2');
      releaseFirst();
      await waitUntil(() => events.includes('E K2'), 'K2 to run', 10_000);
      expect(events.indexOf('S K2'), 'K2 starts after K1 ended').to.be.greaterThan(events.indexOf('E K1'));
    } finally {
      releaseFirst();
      await w.stop(0);
    }
  });
});

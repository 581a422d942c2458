/**
 * Queues paused and limited from the application, on every database: pauseQueue(),
 * resumeQueue(), setQueueLimits() and queues(); what workers claim from a paused queue (nothing,
 * while its running tasks finish); the per-queue claim path (a paused backlog ahead in claim order
 * holds no other queue back, and tasks without a queue still run); and the `queues` setting,
 * written by every worker when it starts.
 */
import { expect } from 'chai';
import { background, pauseQueue, queues, resumeQueue, schedule, setQueueLimits, ValidationError } from '../../core/index.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { recordingLogger } from '../helpers/log.js';
import { countRows, taskRows } from '../helpers/stored-rows.js';

const ran: string[] = [];
const gates = new Map<string, () => void>();
const gate = (tag: string) => new Promise<void>((r) => gates.set(tag, r));

const job = background({ name: 'flowq.job' }, function job(tag: string) {
  ran.push(tag);
});
const held = background({ name: 'flowq.held' }, async function held(tag: string) {
  ran.push(tag);
  await gate(tag);
});

const T0 = Date.UTC(2031, 2, 3, 10);

contract('pausing and limiting queues', (db) => {
  const { clock, drain } = manualClockSuite(db, T0, () => {
    ran.length = 0;
    for (const open of gates.values()) open();
    gates.clear();
  });
  const queueRow = async (name: string) => (await db.store.knex(db.store.tables.queues).where('name', name).first()) as Record<string, unknown> | undefined;

  describe('pauseQueue, resumeQueue, setQueueLimits, queues()', () => {
    it('pauses a queue nobody used yet (its row is created), and says whether each call changed anything', async () => {
      expect(await pauseQueue('fresh')).to.equal(true);
      expect(await pauseQueue('fresh')).to.equal(false);
      const [q] = await queues();
      expect(q).to.deep.equal({ name: 'fresh', paused: true, concurrency: null, rateLimit: null, counts: { READY: 0, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 } });
      expect(await resumeQueue('fresh')).to.equal(true);
      expect(await resumeQueue('fresh')).to.equal(false);
      expect(await resumeQueue('never-used')).to.equal(false);
      expect(await queueRow('never-used')).to.equal(undefined);
      expect((await queues()).map((x) => [x.name, x.paused])).to.deep.equal([['fresh', false]]);
    });

    it('queues() lists every queue with its counts, state and limits, the tasks without a queue first', async () => {
      await job('a', schedule(0, { queue: 'mail' }));
      await job('b', schedule(0, { queue: 'mail' }));
      await job('c');
      await job('d', schedule(0, { queue: 'sms' }));
      await drain({ queues: ['sms'] });
      await pauseQueue('mail');
      await setQueueLimits('mail', { concurrency: 3, rateLimit: { limit: 50, period: 2 } });
      await setQueueLimits('api', { rateLimit: { limit: 5, period: 60, perKey: true } });
      const list = await queues();
      expect(list).to.deep.equal([
        { name: null, paused: false, concurrency: null, rateLimit: null, counts: { READY: 1, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 } },
        { name: 'api', paused: false, concurrency: null, rateLimit: { limit: 5, period: 60, perKey: true }, counts: { READY: 0, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 } },
        { name: 'mail', paused: true, concurrency: 3, rateLimit: { limit: 50, period: 2 }, counts: { READY: 2, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 } },
        { name: 'sms', paused: false, concurrency: null, rateLimit: null, counts: { READY: 0, RUNNING: 0, SUCCESSFUL: 1, FAILED: 0 } },
      ]);
    });

    it('setQueueLimits sets limits, keeps a limit left out, removes one given null, and leaves the paused state alone', async () => {
      await pauseQueue('mail');
      await setQueueLimits('mail', { concurrency: 4, rateLimit: { limit: 10, period: 0.5 } });
      await setQueueLimits('mail', { concurrency: 2 });
      let [q] = await queues();
      expect([q!.paused, q!.concurrency, q!.rateLimit]).to.deep.equal([true, 2, { limit: 10, period: 0.5 }]);
      await setQueueLimits('mail', { rateLimit: null });
      [q] = await queues();
      expect([q!.paused, q!.concurrency, q!.rateLimit]).to.deep.equal([true, 2, null]);
      await setQueueLimits('mail', { concurrency: null });
      [q] = await queues();
      expect([q!.paused, q!.concurrency, q!.rateLimit]).to.deep.equal([true, null, null]);
    });

    it('refuses bad limits and names with a ValidationError naming the value, and stores nothing', async () => {
      const bad: Array<[unknown, RegExp]> = [
        [{ concurrency: 0 }, /concurrency of queue mail: 0 — expected a whole number of tasks >= 1/],
        [{ concurrency: -2 }, /-2/],
        [{ concurrency: 1.5 }, /1\.5/],
        [{ concurrency: '3' }, /"3"/],
        [{ concurrency: NaN }, /NaN/],
        [{ rateLimit: { limit: 0, period: 1 } }, /rateLimit of queue mail\.limit: 0/],
        [{ rateLimit: { limit: 5, period: 0 } }, /rateLimit of queue mail\.period: 0 — expected a number of seconds > 0/],
        [{ rateLimit: { limit: 5, period: -1 } }, /period: -1/],
        [{ rateLimit: { limit: 2.5, period: 1 } }, /limit: 2\.5/],
        [{ rateLimit: { limit: '5', period: 1 } }, /limit: "5"/],
        [{ rateLimit: { limit: 5 } }, /period: undefined/],
        [{ rateLimit: { limit: 5, period: 1, burst: 2 } }, /unknown field "burst"/],
        [{ rateLimit: '50/2' }, /"50\/2" — expected \{ limit, period \}/],
        [{ paused: true }, /unknown limit "paused"/],
      ];
      for (const [limits, message] of bad) {
        const err = await setQueueLimits('mail', limits as never).catch((e: unknown) => e);
        expect(err, JSON.stringify(limits)).to.be.instanceOf(ValidationError);
        expect((err as Error).message, JSON.stringify(limits)).to.match(message);
      }
      for (const name of ['', 'x'.repeat(191), null, 7]) {
        expect(await pauseQueue(name as never).catch((e: unknown) => e)).to.be.instanceOf(ValidationError);
        expect(await setQueueLimits(name as never, { concurrency: 1 }).catch((e: unknown) => e)).to.be.instanceOf(ValidationError);
      }
      // A valid concurrency next to a bad rate limit is not stored either.
      expect(await setQueueLimits('mail', { concurrency: 2, rateLimit: { limit: 0, period: 1 } }).catch((e: unknown) => e)).to.be.instanceOf(ValidationError);
      expect(await countRows(db, db.store.tables.queues)).to.equal(0);
    });
  });

  describe('workers and paused queues', () => {
    it('claims nothing from a paused queue, runs other queues and tasks without a queue, and ends its batch; resumed, the queue runs', async () => {
      await job('p1', schedule(0, { queue: 'p' }));
      await job('q1', schedule(0, { queue: 'q' }));
      await job('none');
      await pauseQueue('p');
      const s = await drain({ concurrency: 2 });
      expect(s.reason).to.equal('batch');
      expect([...ran].sort()).to.deep.equal(['none', 'q1']);
      const [row] = await taskRows(db);
      expect([row!.queue, row!.locked_by, Number(row!.attempts), row!.last_error]).to.deep.equal(['p', null, 0, null]);
      await resumeQueue('p');
      await drain();
      expect(ran).to.include('p1');
      expect(await taskRows(db)).to.deep.equal([]);
    });

    it('a paused backlog ahead in claim order does not hold back other queues\' tasks, with or without a queue filter', async () => {
      await job.bulk(Array.from({ length: 300 }, (_, i) => [`p${i}`] as [string]), { queue: 'p', priority: 10 });
      await job('q1', schedule(0, { queue: 'q', priority: 0 }));
      await job('q2', schedule(0, { queue: 'q', priority: -5 }));
      await job('none', schedule(0, { priority: 0 }));
      await pauseQueue('p');
      await drain({ concurrency: 1, prefetch: 0 });
      expect([...ran].sort()).to.deep.equal(['none', 'q1', 'q2']);
      await job('q3', schedule(0, { queue: 'q' }));
      await drain({ concurrency: 1, prefetch: 0, queues: ['p', 'q'] });
      await job('q4', schedule(0, { queue: 'q' }));
      await job('none2');
      await drain({ concurrency: 1, prefetch: 0, excludeQueues: ['other'] });
      expect([...ran].sort()).to.deep.equal(['none', 'none2', 'q1', 'q2', 'q3', 'q4']);
      expect(await countRows(db, db.store.tables.tasks)).to.equal(300);
    });

    it('running tasks of a queue paused meanwhile finish; nothing more is claimed from it until it is resumed', async () => {
      const log = recordingLogger();
      const w = await new Worker({ clock, sleep: 0.05, concurrency: 4, prefetch: 0, logger: log }).start(db.settings);
      try {
        await held('first', schedule(0, { queue: 'p' }));
        await waitUntil(() => ran.includes('first'), 'the first task to start');
        await pauseQueue('p');
        await waitUntil(() => log.find('info', /paused queues changed/).length > 0, 'the worker to read the pause');
        await job('second', schedule(0, { queue: 'p' }));
        await job('other', schedule(0, { queue: 'q' }));
        await waitUntil(() => ran.includes('other'), 'the other queue\'s task to run');
        gates.get('first')!();
        await waitUntil(async () => (await countRows(db, db.store.tables.completed)) === 2, 'the first task to finish');
        expect(ran).to.not.include('second');
        const [row] = await taskRows(db);
        expect([row!.args, row!.locked_by, Number(row!.attempts)]).to.deep.equal(['["second"]', null, 0]);
        await resumeQueue('p');
        await waitUntil(() => ran.includes('second'), 'the paused task to run once its queue is resumed');
      } finally {
        await w.stop(0);
      }
    });

    it('a higher-priority task in a paused queue is not claimed by the prefetch\'s priority check', async () => {
      await pauseQueue('p');
      await held('busy', schedule(0, { queue: 'q', priority: 1 }));
      for (let i = 0; i < 4; i++) await job(`low${i}`, schedule(0, { queue: 'q', priority: 0 }));
      // One claim takes all five: one runs, four wait in the prefetch buffer.
      const w = await new Worker({ clock, sleep: 0.01, concurrency: 1, prefetch: 4, logger: recordingLogger() }).start(db.settings);
      try {
        await waitUntil(() => ran.includes('busy'), 'the long task to start');
        expect(await db.store.knex(db.store.tables.tasks).whereNotNull('locked_by').count({ n: '*' }).then((r) => Number((r as Array<{ n: unknown }>)[0]!.n))).to.equal(5);
        await job('urgent', schedule(0, { queue: 'p', priority: 10 }));
        // The buffer is older than the priority check's interval (the worker's sleep, 10 ms) when the slot frees.
        const t = Date.now();
        await waitUntil(() => Date.now() - t > 50, 'the prefetched tasks to be due for a priority check');
        gates.get('busy')!();
        await waitUntil(async () => (await countRows(db, db.store.tables.completed)) === 5, 'the queue q tasks to finish');
        expect(ran).to.not.include('urgent');
        const [row] = await taskRows(db);
        expect([row!.args, row!.locked_by, Number(row!.attempts)]).to.deep.equal(['["urgent"]', null, 0]);
      } finally {
        await w.stop(0);
      }
    });
  });

  describe('a batch run beside flow control', () => {
    it('ends when only tasks held back by a rate limit are due (a window of an hour), and leaves them READY', async () => {
      await setQueueLimits('rl', { rateLimit: { limit: 1, period: 3600 } });
      for (const tag of ['r1', 'r2', 'r3']) await job(tag, schedule(0, { queue: 'rl' }));
      await job('free');
      const log = recordingLogger();
      const s = await drain({ logger: log });
      expect(s.reason).to.equal('batch');
      expect(ran.filter((t) => t.startsWith('r')), 'one start in the window').to.have.length(1);
      expect(ran).to.include('free');
      const left = await taskRows(db);
      expect(left.map((r) => [r.queue, r.locked_by, Number(r.attempts)])).to.deep.equal([
        ['rl', null, 0],
        ['rl', null, 0],
      ]);
      expect(log.find('info', /batch run ends with tasks held back by flow control/)).to.have.length(1);
    });

    it('claims tasks held back by a short rate window in the same run: the window reopens within its wait', async () => {
      await setQueueLimits('fast', { rateLimit: { limit: 1, period: 0.3 } });
      for (const tag of ['f1', 'f2', 'f3']) await job(tag, schedule(0, { queue: 'fast' }));
      // The suite's clock, moving in real time from T0: the window must reopen while the run waits.
      const start = performance.now();
      const moving = { simulated: true, now: () => T0 + Math.round(performance.now() - start) };
      const s = await drain({ clock: moving });
      expect([s.reason, s.ran]).to.deep.equal(['batch', 3]);
      expect([...ran].sort()).to.deep.equal(['f1', 'f2', 'f3']);
    });

    it('ends when the only due task waits for a concurrency slot another worker holds', async () => {
      await setQueueLimits('one', { concurrency: 1 });
      await held('long', schedule(0, { queue: 'one' }));
      const other = await new Worker({ clock, sleep: 0.05, logger: recordingLogger(), workerId: 'other' }).start(db.settings);
      try {
        await waitUntil(() => ran.includes('long'), 'the other worker to start its task');
        await job('waiting', schedule(0, { queue: 'one' }));
        expect((await drain()).reason).to.equal('batch');
        expect(ran).to.not.include('waiting');
        gates.get('long')!();
        await waitUntil(() => ran.includes('waiting'), 'the other worker to run it once the slot is free');
      } finally {
        await other.stop(0);
      }
    });

    it('runs every task of one key in turn (each claimed once its predecessor\'s result is written), then ends', async () => {
      for (let i = 0; i < 4; i++) await job(`k${i}`, schedule(0, { concurrencyKey: 'k' }));
      const s = await drain({ concurrency: 2, prefetch: 0 });
      expect([s.reason, s.ran]).to.deep.equal(['batch', 4]);
      expect(ran).to.deep.equal(['k0', 'k1', 'k2', 'k3']);
    });
  });

  describe('the queues setting', () => {
    it('is written to the queues table by a worker when it starts, wins over a change made at run time, and keeps the paused state', async () => {
      await pauseQueue('mail');
      await setQueueLimits('mail', { concurrency: 7, rateLimit: { limit: 1, period: 1 } });
      const settings = { ...db.settings, queues: { mail: { concurrency: 2 }, api: { rateLimit: { limit: 5, period: 2, perKey: true } } } };
      await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, settings);
      const list = await queues();
      expect(list.map((q) => [q.name, q.paused, q.concurrency, q.rateLimit])).to.deep.equal([
        ['api', false, null, { limit: 5, period: 2, perKey: true }],
        // The setting names only the concurrency: the rate limit set at run time stays.
        ['mail', true, 2, { limit: 1, period: 1 }],
      ]);
      const row = await queueRow('mail');
      expect(String(row!.updated_by)).to.match(/.+/);
    });
  });
});

/**
 * The run budget on every database: a worker with a duration claims only tasks whose run-time
 * limit (the task's own, else its definition's) fits the time left before its duration plus grace
 * runs out, and does not hold back a task with neither; `runBudget: false` turns it off;
 * `explain()` says run-budget; a batch run ends when only tasks that cannot fit are left.
 */
import { expect } from 'chai';
import { background, explain, schedule } from '../../core/index.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { recordingLogger } from '../helpers/log.js';
import { taskRows } from '../helpers/stored-rows.js';

const ran: string[] = [];
const work = background({ name: 'budget.work' }, function work(tag: string) {
  ran.push(tag);
});
const long = background({ name: 'budget.long', maxRunTime: 120 }, function long(tag: string) {
  ran.push(tag);
});

const T0 = Date.UTC(2031, 1, 2, 3);

contract('run budget', (db) => {
  const { clock } = manualClockSuite(db, T0, () => {
    ran.length = 0;
  });
  const unclaimed = async () => (await taskRows(db)).filter((r) => r.locked_by === null && Number(r.attempts) === 0).map((r) => JSON.parse(String(r.args))[0] as string).sort();

  const enqueueMix = async () => {
    await work('own-fits', schedule(0, { maxRunTime: 60 }));
    await work('own-too-long', schedule(0, { maxRunTime: 61 }));
    await long('definition-too-long');
    await long('own-beats-definition', schedule(0, { maxRunTime: 5 }));
    // No limit of its own or of its definition: its run time is unknown, and it is not held back
    // (the maxRunTime setting's default, 3600 s, would hold back every such task).
    await work('no-limit');
  };

  it('a duration run claims only the tasks whose maxRunTime fits the time left (duration + grace)', async () => {
    await enqueueMix();
    const w = await new Worker({ clock, duration: 50, grace: 10, sleep: 0.02, concurrency: 4, logger: recordingLogger() }).start(db.settings);
    try {
      await waitUntil(() => ran.length === 3, 'the three tasks that fit to run');
      expect([...ran].sort()).to.deep.equal(['no-limit', 'own-beats-definition', 'own-fits']);
      // They stay READY with no attempt counted; the next launch (a longer budget) takes them.
      await work('later-fits', schedule(0, { maxRunTime: 1 }));
      await waitUntil(() => ran.includes('later-fits'), 'a task enqueued later that fits');
      expect(await unclaimed()).to.deep.equal(['definition-too-long', 'own-too-long']);
      const a = await explain((await taskRows(db)).find((r) => String(r.args) === '["own-too-long"]')!.id as string);
      expect(a.reasons.map((r) => r.code)).to.deep.equal(['run-budget']);
      expect(a.runnable).to.equal(false);
    } finally {
      await w.stop(0);
    }
  });

  it('the time left shrinks as the run goes on', async () => {
    await work('a', schedule(0, { maxRunTime: 30 }));
    await work('b', schedule(0, { maxRunTime: 40 }));
    const w = await new Worker({ clock, duration: 40, grace: 0, sleep: 0.02, logger: recordingLogger() }).start(db.settings);
    try {
      await waitUntil(() => ran.length === 2, 'both tasks to run');
      clock.advance(21);
      await work('c', schedule(0, { maxRunTime: 20 }));
      await work('d', schedule(0, { maxRunTime: 19 }));
      await waitUntil(() => ran.includes('d'), 'd, which fits the 19 s left');
      expect(ran).to.not.include('c');
    } finally {
      await w.stop(0);
    }
  });

  it('runBudget: false claims every task, fitting or not', async () => {
    await enqueueMix();
    const w = await new Worker({ clock, duration: 50, grace: 10, sleep: 0.02, concurrency: 4, runBudget: false, logger: recordingLogger() }).start(db.settings);
    try {
      await waitUntil(() => ran.length === 5, 'all five tasks to run');
    } finally {
      await w.stop(0);
    }
  });

  it('a run without a duration has no budget', async () => {
    await enqueueMix();
    const s = await Worker.drain({ clock, sleep: 0.01, concurrency: 4, logger: recordingLogger() }, db.settings);
    expect(s.succeeded).to.equal(5);
  });

  it('a batch run with a duration ends when only tasks that cannot fit are left', async function () {
    this.timeout(10_000);
    await enqueueMix();
    const started = Date.now();
    const s = await Worker.drain({ clock, duration: 30, grace: 30, sleep: 0.01, concurrency: 4, logger: recordingLogger() }, db.settings);
    expect(s.reason).to.equal('batch');
    expect(Date.now() - started).to.be.lessThan(5000);
    expect(s.succeeded).to.equal(3);
    expect(await unclaimed()).to.deep.equal(['definition-too-long', 'own-too-long']);
  });
});

/**
 * A running repeating twin counts as existing (issue 15, item 4; django-background-tasks #233):
 * no dedupe action leaves a second repeat chain next to a task of the chain that is running, on
 * every database. The rule is in docs/getting-started.md ("Duplicates: the dedupe action").
 */
import { expect } from 'chai';
import { background, schedule, Repeat } from '../../core/index.js';
import { unregister } from '../../core/definition/registry.js';
import { Worker } from '../../core/worker/worker.js';
import type { TaskRow } from '../../core/types.js';
import { nextSlot } from '../../core/policy/recurrence.js';
import { contract, waitUntil, type TestDatabase } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2030, 5, 1, 8, 0, 0);
let gate: Promise<void> = Promise.resolve();
let started = 0;

const report = background({ name: 'twins.report' }, async function report(tag: string) {
  started++;
  await gate;
  return tag;
});
after(() => unregister('twins.report'));

contract('a running repeating twin counts as existing', (db: TestDatabase) => {
  const { clock } = manualClockSuite(db, T0, () => {
    gate = Promise.resolve();
    started = 0;
  });
  const pending = async () =>
    ((await db.store.knex(db.store.tables.tasks).select('id', 'run_at', 'locked_by', 'repeat_every_ms', 'repeat_until').orderBy('id')) as Array<Record<string, unknown>>).map((r) => ({
      id: String(r.id),
      runAt: Number(r.run_at),
      running: r.locked_by !== null,
      repeats: Number(r.repeat_every_ms) > 0,
      until: r.repeat_until === null ? null : Number(r.repeat_until),
    }));
  /** Claims the one due task, as a worker would: it is RUNNING from now on. */
  const claimOne = async (): Promise<TaskRow> => {
    const [t] = await db.store.claim({ names: ['twins.report'], queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w', nowMs: clock.now(), leaseMs: 60_000, limit: 1 });
    expect(t, 'a due task to claim').to.not.equal(undefined);
    return t!;
  };
  /** Records the claimed task's success, with the successor its worker computes from the claimed row. */
  const complete = async (t: TaskRow) => {
    const successorAt = nextSlot({ everyMs: t.repeatEvery * 1000, cron: t.repeatCron, timezone: t.timezone, untilMs: t.repeatUntil }, t.scheduledAt, clock.now());
    const { lost } = await db.store.completeMany([{ task: t, finishedAt: clock.now(), returnValue: null, successorAt }], clock.now());
    expect(lost).to.deep.equal([]);
  };
  const chain = (tag: string, action?: 'checkExisting' | 'rescheduleExisting' | 'replaceExisting', when = 0) =>
    report(tag, schedule(when, { repeat: Repeat.HOURLY, ...(action ? { action } : {}) }));

  it("checkExisting while the chain's task is RUNNING: outcome 'existing' with the running task's id, nothing inserted", async () => {
    const first = await chain('c');
    const running = await claimOne();
    const again = await chain('c', 'checkExisting', 30);
    expect(again).to.include({ outcome: 'existing', id: first.id });
    expect(again.runAt.getTime()).to.equal(T0);
    expect(running.id).to.equal(first.id);
    expect(await pending()).to.have.length(1);
  });

  it('checkExisting from a one-off call also finds the running chain', async () => {
    const first = await chain('o');
    await claimOne();
    const once = await report('o', schedule(0, { action: 'checkExisting' }));
    expect(once).to.include({ outcome: 'existing', id: first.id });
  });

  it('rescheduleExisting while only the running task exists: nothing moves, nothing is inserted, outcome existing', async () => {
    const first = await chain('r');
    await claimOne();
    const again = await chain('r', 'rescheduleExisting', 600);
    expect(again).to.include({ outcome: 'existing', id: first.id });
    expect((await pending()).map((p) => p.runAt)).to.deep.equal([T0]);
  });

  it('rescheduleExisting moves a READY twin and leaves the running one', async () => {
    await chain('r2');
    await claimOne();
    const ready = await chain('r2');
    const again = await chain('r2', 'rescheduleExisting', 600);
    expect(again).to.include({ outcome: 'rescheduled', id: ready.id });
    expect((await pending()).map((p) => [p.running, p.runAt])).to.deep.equal([
      [true, T0],
      [false, T0 + 600_000],
    ]);
  });

  it('replaceExisting while the chain runs: inserts the new chain and ends the running one, which then schedules no successor', async () => {
    const first = await chain('x');
    const running = await claimOne();
    const fresh = await chain('x', 'replaceExisting', 60);
    expect(fresh.outcome).to.equal('replaced');
    expect(await pending()).to.deep.equal([
      { id: first.id, runAt: T0, running: true, repeats: true, until: T0 },
      { id: fresh.id, runAt: T0 + 60_000, running: false, repeats: true, until: null },
    ]);
    clock.advance(10);
    await complete(running);
    expect((await pending()).map((p) => p.id)).to.deep.equal([fresh.id]);
    // The finished run records the end of its chain.
    expect((await db.store.findCompleted(first.id))!.repeatUntil).to.equal(T0);
  });

  it('a running task without a recurrence, or whose chain has ended, does not count', async () => {
    const once = await report('n', schedule(0));
    await claimOne();
    const c = await chain('n', 'checkExisting');
    expect(c.outcome).to.equal('created');
    expect(c.id).to.not.equal(once.id);

    await db.reset();
    await report('e', schedule(0, { repeat: Repeat.HOURLY, repeatUntil: new Date(T0 + HOUR) }));
    await claimOne();
    expect((await chain('e', 'checkExisting')).outcome).to.equal('created');
  });

  it('a chain ended by replaceExisting stays ended when its running task fails and is retried', async () => {
    const first = await chain('f');
    const running = await claimOne();
    const fresh = await chain('f', 'replaceExisting');
    // The old run fails and is retried: back to READY, its chain still ended.
    const err = { class: 'Error', message: 'boom', stack: 'Error: boom', attempt: 1, at: T0, worker: 'w' } as never;
    expect(await db.store.retry(running, T0 + 5_000, err)).to.equal('ok');
    clock.advance(6);
    const rows = await pending();
    expect(rows.map((r) => [r.id, r.until])).to.deep.equal([
      [first.id, T0],
      [fresh.id, null],
    ]);
    // Both run; only the new chain goes on.
    const a = await claimOne();
    const b = await claimOne();
    await complete(a);
    await complete(b);
    const left = await pending();
    expect(left).to.have.length(1);
    expect(left[0]!.runAt).to.equal(T0 + HOUR);
  });

  it('concurrent enqueues and the end of the running task leave exactly one chain (every action, 5 rounds)', async () => {
    for (const action of ['checkExisting', 'rescheduleExisting', 'replaceExisting'] as const) {
      for (let round = 0; round < 5; round++) {
        await db.reset();
        clock.set(T0);
        await chain(`race-${action}`);
        const running = await claimOne();
        await Promise.all([complete(running), ...Array.from({ length: 5 }, () => chain(`race-${action}`, action))]);
        const rows = await pending();
        expect(rows, `${action}, round ${round}: ${JSON.stringify(rows)}`).to.have.length(1);
        expect(rows[0]).to.include({ repeats: true, until: null });
      }
    }
  });

  it('the start-up pile-up (#233): three process starts while the chain runs, then exactly one chain after it completes', async () => {
    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    const first = await chain('startup', 'checkExisting');
    expect(first.outcome).to.equal('created');
    const log = recordingLogger();
    const w = await new Worker({ sleep: 0.01, logger: log, names: ['twins.report'] }).start(db.settings);
    try {
      await waitUntil(() => started === 1, 'the chain task to start');
      // Three deploys while it runs: each start-up calls the same code.
      for (const action of ['checkExisting', 'rescheduleExisting', 'replaceExisting'] as const) {
        const r = await chain('startup', action);
        if (action === 'replaceExisting') expect(r.outcome).to.equal('replaced');
        else expect(r).to.include({ outcome: 'existing', id: first.id });
      }
      open();
      await waitUntil(async () => (await db.store.findCompleted(first.id)) !== null, 'the running task to complete');
    } finally {
      open();
      await w.stop(5);
    }
    const rows = await pending();
    expect(rows, JSON.stringify(rows)).to.have.length(1);
    expect(rows[0]).to.include({ repeats: true, until: null });
  });
});

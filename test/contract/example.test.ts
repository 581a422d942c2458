/**
 * tasks.example.ts, run: the example tasks users copy must keep working (it is type-checked by
 * `npm run typecheck` too).
 */
import { expect } from 'chai';
import { notifyUser, purgeSessions, resizeImage, syncInventory } from '../../tasks.example.js';
import { getResult, schedule } from '../../core/index.js';
import { ManualClock } from '../../core/base/clock.js';
import { resetClock, setClock } from '../../core/base/clock.js';
import { Worker } from '../../core/worker/worker.js';
import { contract } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';

contract('tasks.example.ts', (db) => {
  const clock = new ManualClock(Date.UTC(2031, 4, 1));
  beforeEach(async () => {
    await db.reset();
    setClock(clock);
  });
  afterEach(() => resetClock());

  const drain = (names: string[] = ['notifyUser', 'syncInventory', 'resizeImage']) =>
    Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), names }, db.settings);

  it('runs every example task to its documented result', async () => {
    const later = await notifyUser(7, 'hello');
    const now = await notifyUser(8, 'hi', schedule(0));
    const flaky = await syncInventory('berlin');
    const resized = await resizeImage('photos/cat.png', 320);
    expect(later.runAt.getTime()).to.equal(clock.now() + 60_000);
    await drain();
    expect((await getResult(now.id)).returnValue).to.deep.equal({ userId: 8, delivered: true });
    expect((await getResult(resized.id)).returnValue).to.deep.equal({ path: 'photos/cat.png', width: 320, thumbnail: 'photos/cat-320w.png' });
    expect((await getResult(flaky.id)).status).to.equal('READY');
    clock.advance(60);
    await drain();
    expect((await getResult(later.id)).status).to.equal('SUCCESSFUL');
    const synced = await getResult(flaky.id);
    expect(synced.returnValue).to.deep.equal({ warehouse: 'berlin', items: 42, attempt: 2 });
    expect(synced.hasError).to.equal(true);
    const bad = await notifyUser(-1, 'x', schedule(0));
    await drain();
    expect((await getResult(bad.id)).status).to.equal('FAILED');
  });

  it('repeats purgeSessions an hour after each run, with the same arguments', async () => {
    clock.set(Date.UTC(2031, 4, 1, 10));
    const first = await purgeSessions(30);
    await drain(['purgeSessions']);
    expect((await getResult(first.id)).returnValue).to.deep.equal({ olderThanDays: 30, purged: 0 });
    const next = (await db.store.knex(db.store.tables.tasks).where('name', 'purgeSessions').select('args', 'run_at')) as Array<{ args: string; run_at: unknown }>;
    expect(next.map((r) => [r.args, Number(r.run_at)])).to.deep.equal([['[30]', Date.UTC(2031, 4, 1, 11)]]);
  });

  it('enqueues dailyReport at 03:00 Berlin time once per day, however many workers run', async () => {
    // 00:50 UTC is 02:50 in Berlin (summer time): the schedule is first seen before its slot.
    clock.set(Date.UTC(2031, 4, 1, 0, 50));
    await drain(['dailyReport']);
    clock.set(Date.UTC(2031, 4, 1, 1, 0, 5));
    await Promise.all([drain(['dailyReport']), drain(['dailyReport']), drain(['dailyReport'])]);
    const rows = (await db.store.knex(db.store.tables.completed).where('name', 'dailyReport').select('task_id', 'scheduled_at')) as Array<{ task_id: unknown; scheduled_at: unknown }>;
    expect(rows.map((r) => Number(r.scheduled_at))).to.deep.equal([Date.UTC(2031, 4, 1, 1)]);
    expect((await getResult(String(rows[0]!.task_id))).returnValue).to.deep.equal({ kind: 'sales', rows: 0 });
  });
});

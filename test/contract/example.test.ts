/**
 * tasks.example.ts, run: the example tasks users copy must keep working (it is type-checked by
 * `npm run typecheck` too).
 */
import { expect } from 'chai';
import { notifyUser, resizeImage, syncInventory } from '../../tasks.example.js';
import { getResult, schedule } from '../../core/index.js';
import { ManualClock } from '../../core/clock.js';
import { resetClock, setClock } from '../../core/clock-state.js';
import { Worker } from '../../core/worker.js';
import { contract } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';

contract('tasks.example.ts', (db) => {
  const clock = new ManualClock(Date.UTC(2031, 4, 1));
  beforeEach(async () => {
    await db.reset();
    setClock(clock);
  });
  afterEach(() => resetClock());

  it('runs every example task to its documented result', async () => {
    const drain = () =>
      Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), names: ['notifyUser', 'syncInventory', 'resizeImage'] }, db.settings);
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
});

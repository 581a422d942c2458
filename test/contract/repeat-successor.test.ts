/**
 * What the successor of a repeating task copies from the original, on every database: its
 * call-site options, whether the original succeeded or failed for good.
 */
import { expect } from 'chai';
import { background, schedule, Repeat } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { taskRows } from '../helpers/stored-rows.js';

const HOUR = 3_600_000;

const repeating = background({ name: 'gaps.repeating' }, function repeating(tag: string) {
  return tag;
});
const repeatingFails = background({ name: 'gaps.repeatingFails' }, function repeatingFails(tag: string) {
  throw new Error(`fails ${tag}`);
});

const T0 = Date.UTC(2032, 3, 1, 9);

contract("a repeating task's successor", (db) => {
  const { drain } = manualClockSuite(db, T0);
  const pendingRows = () => taskRows(db);

  const until = new Date(T0 + 10 * HOUR);
  const callOptions = {
    queue: 'gaps-q',
    priority: 7,
    verboseName: 'Hourly report',
    creator: { type: 'auth.user', id: 42 },
    repeat: Repeat.HOURLY,
    repeatUntil: until,
  };
  const expected = {
    queue: 'gaps-q',
    priority: 7,
    verboseName: 'Hourly report',
    creatorType: 'auth.user',
    creatorId: '42',
    repeatEvery: 3600,
    repeatUntil: until.getTime(),
    runAt: T0 + HOUR,
    attempts: 0,
  };
  const successor = async (originalId: string) => {
    const rows = await pendingRows();
    expect(rows).to.have.length(1);
    const next = (await db.store.findPending(String(rows[0]!.id)))!;
    expect(next.id).not.to.equal(originalId);
    return next;
  };

  it('copies queue, priority, verbose name, creator, repeat and repeatUntil from the original', async () => {
    const first = await repeating('r', schedule(0, callOptions));
    const summary = await drain();
    expect(summary.succeeded).to.equal(1);
    expect(await successor(first.id)).to.include({ name: 'gaps.repeating', args: '["r"]', ...expected });
  });

  it('copies them too when the original failed for good', async () => {
    const first = await repeatingFails('f', schedule(0, { ...callOptions, maxAttempts: 1 }));
    const summary = await drain();
    expect(summary.failed).to.equal(1);
    expect(await successor(first.id)).to.include({ name: 'gaps.repeatingFails', args: '["f"]', ...expected });
  });
});

/**
 * Snooze in the test modes (no database) and inline: in `immediate` and `dummy` mode a snoozing
 * task stays READY at its new time with no attempt counted and one more snooze, bounded by
 * maxSnoozes as a worker bounds it; `.now()` has no queue to go back to, so the Snooze reaches the
 * caller.
 */
import { expect } from 'chai';
import { background, configure, dummy, getResult, isSnooze, resetConfiguration, snooze, ValidationError } from '../../core/index.js';
import { ManualClock, resetClock, setClock } from '../../core/base/clock.js';

let calls = 0;
const polls = background({ name: 'modes.snoozes', context: true }, function polls(ctx, seconds: number) {
  calls++;
  ctx.snooze(seconds);
});
const returns = background({ name: 'modes.returnsSnooze' }, function returns(seconds: number) {
  calls++;
  return snooze(seconds);
});

const T0 = Date.UTC(2031, 0, 2, 3);
const NOWHERE = 'postgres://nobody:secret@127.0.0.1:1/none';

describe('snooze in the test modes and inline', () => {
  const clock = new ManualClock(T0);
  beforeEach(() => {
    calls = 0;
    dummy.clear();
    clock.set(T0);
    setClock(clock);
  });
  afterEach(() => {
    dummy.clear();
    resetConfiguration();
    resetClock();
  });

  for (const mode of ['immediate', 'dummy'] as const) {
    it(`${mode}: a snoozing task stays READY at now + seconds, attempt not counted, and each run counts a snooze`, async () => {
      configure({ mode, database: NOWHERE });
      const ref = await polls(30);
      if (mode === 'dummy') await dummy.runAll();
      expect(calls).to.equal(1);
      const r = await getResult(ref.id);
      expect([r.status, r.attempts, r.runAt.getTime(), r.errors.length]).to.deep.equal(['READY', 0, T0 + 30_000, 0]);
      await dummy.runAll();
      expect(calls).to.equal(2);
      expect((await getResult(ref.id)).status).to.equal('READY');
    });

    it(`${mode}: one snooze more than maxSnoozes fails the task with TooManySnoozesError`, async () => {
      configure({ mode, database: NOWHERE, maxSnoozes: 1 });
      const ref = await returns(5);
      if (mode === 'dummy') await dummy.runAll();
      expect((await getResult(ref.id)).status).to.equal('READY');
      await dummy.runAll();
      const r = await getResult(ref.id);
      expect(r.status).to.equal('FAILED');
      expect(r.errors.at(-1)!.exceptionClass).to.equal('TooManySnoozesError');
      expect(calls).to.equal(2);
    });
  }

  it('.now(): the Snooze is thrown to the caller (ctx.snooze) or returned (snooze())', async () => {
    let thrown: unknown = null;
    try {
      await polls.now(5);
    } catch (e) {
      thrown = e;
    }
    expect(isSnooze(thrown)).to.equal(true);
    expect((thrown as { seconds: number }).seconds).to.equal(5);
    expect(isSnooze(await returns.now(7))).to.equal(true);
  });

  it('snooze() refuses a duration that is not seconds > 0 and at most a year', () => {
    for (const bad of [0, -1, Number.NaN, Infinity, 31_536_001, '5']) {
      expect(() => snooze(bad as number), String(bad)).to.throw(ValidationError, /Invalid snooze/);
    }
    expect(() => snooze('5' as unknown as number)).to.throw(ValidationError, /^Invalid snooze: "5" — expected seconds > 0/);
    expect(snooze(0.5).seconds).to.equal(0.5);
    expect(snooze(31_536_000).seconds).to.equal(31_536_000);
  });
});

/**
 * core/policy/recurrence.ts, interval recurrences: successors keep the phase of the scheduled
 * slot, missed slots are skipped (not replayed), and repeatUntil ends the chain.
 */
import { expect } from 'chai';
import { isRecurring, nextSlot, type Recurrence } from '../../core/policy/recurrence.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const WEEK = 7 * 24 * HOUR;
const SLOT = Date.UTC(2030, 0, 1, 10, 15);

const every = (ms: number, untilMs: number | null = null): Recurrence => ({ everyMs: ms, cron: null, timezone: null, untilMs });
const none: Recurrence = { everyMs: 0, cron: null, timezone: null, untilMs: null };

describe('isRecurring', () => {
  it('is true for an interval or a cron rule, false for neither', () => {
    expect(isRecurring(every(HOUR))).to.equal(true);
    expect(isRecurring({ ...none, cron: '0 * * * *' })).to.equal(true);
    expect(isRecurring(none)).to.equal(false);
  });
});

describe('nextSlot (intervals)', () => {
  it('is null without a recurrence', () => {
    expect(nextSlot(none, SLOT, SLOT)).to.equal(null);
  });

  it('is the slot plus the interval when that is still ahead', () => {
    expect(nextSlot(every(HOUR), SLOT, SLOT + 5 * MINUTE)).to.equal(SLOT + HOUR);
  });

  it('keeps the phase of the scheduled slot, not of the (retry-shifted) run time', () => {
    // Scheduled at 10:15, finished at 13:40 after retries: the next slot is 14:15.
    expect(nextSlot(every(HOUR), SLOT, Date.UTC(2030, 0, 1, 13, 40))).to.equal(Date.UTC(2030, 0, 1, 14, 15));
  });

  it('skips missed slots: a week-overdue hourly task is followed at original + 1 week + 1 hour', () => {
    const now = SLOT + WEEK + 30_000;
    expect(nextSlot(every(HOUR), SLOT, now)).to.equal(SLOT + WEEK + HOUR);
  });

  it('keeps a slot that is due exactly now (it is not before now)', () => {
    expect(nextSlot(every(HOUR), SLOT, SLOT + 3 * HOUR)).to.equal(SLOT + 3 * HOUR);
  });

  it('gives the same answer as adding the interval until it is not in the past', () => {
    const r = every(7 * MINUTE + 13_000);
    for (const lateMs of [0, 1, 59_999, 3 * HOUR + 17, 2 * WEEK + 5]) {
      const now = SLOT + lateMs;
      let expected = SLOT + r.everyMs;
      while (expected < now) expected += r.everyMs;
      expect(nextSlot(r, SLOT, now), `late by ${lateMs} ms`).to.equal(expected);
    }
  });

  it('gives no successor at or after repeatUntil', () => {
    expect(nextSlot(every(HOUR, SLOT + HOUR), SLOT, SLOT + MINUTE)).to.equal(null);
    expect(nextSlot(every(HOUR, SLOT + 30 * MINUTE), SLOT, SLOT + MINUTE)).to.equal(null);
    expect(nextSlot(every(HOUR, SLOT + HOUR + 1), SLOT, SLOT + MINUTE)).to.equal(SLOT + HOUR);
  });

  it('applies repeatUntil to the slot after skipping missed ones', () => {
    const until = SLOT + 5 * HOUR;
    expect(nextSlot(every(HOUR, until), SLOT, SLOT + 4 * HOUR + MINUTE)).to.equal(null);
    expect(nextSlot(every(HOUR, until), SLOT, SLOT + 3 * HOUR + MINUTE)).to.equal(SLOT + 4 * HOUR);
  });
});

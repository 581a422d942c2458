/**
 * core/policy/transitions.ts: what a settle must write, for every way an attempt can end, and for a
 * lease that expired.
 */
import { expect } from 'chai';
import { decide, decideExpiredLease, decideRecordRefused, type Execution, type TaskState } from '../../core/policy/transitions.js';
import type { Recurrence } from '../../core/policy/recurrence.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const SLOT = Date.UTC(2030, 0, 1, 10, 0);
const MAX = 25;

const once: Recurrence = { everyMs: 0, cron: null, timezone: null, untilMs: null };
const hourly: Recurrence = { everyMs: HOUR, cron: null, timezone: null, untilMs: null };

function task(over: Partial<TaskState> = {}): TaskState {
  return { attempts: 1, scheduledAt: SLOT, recurrence: once, repeatOnFailure: true, ...over };
}

const boom = new Error('boom');
const error = (permanent = false): Execution => ({ kind: 'error', error: boom, permanent });

describe('decide', () => {
  describe('success', () => {
    it('completes a one-off task without a successor', () => {
      expect(decide(task(), { kind: 'success', returnJson: '5' }, { nowMs: SLOT + SECOND, maxAttempts: MAX })).to.deep.equal({
        type: 'complete',
        successorAt: null,
      });
    });

    it('completes a recurring task with its next slot as successor', () => {
      const d = decide(task({ recurrence: hourly }), { kind: 'success', returnJson: null }, { nowMs: SLOT + 10 * MINUTE, maxAttempts: MAX });
      expect(d).to.deep.equal({ type: 'complete', successorAt: SLOT + HOUR });
    });

    it('computes the successor from the scheduled slot, even after retries moved the run time', () => {
      const d = decide(task({ recurrence: hourly, attempts: 4 }), { kind: 'success', returnJson: null }, { nowMs: SLOT + 2 * HOUR + 5 * MINUTE, maxAttempts: MAX });
      expect(d).to.deep.equal({ type: 'complete', successorAt: SLOT + 3 * HOUR });
    });

    it('completes without a successor once repeatUntil is reached', () => {
      const r: Recurrence = { ...hourly, untilMs: SLOT + HOUR };
      expect(decide(task({ recurrence: r }), { kind: 'success', returnJson: null }, { nowMs: SLOT + MINUTE, maxAttempts: MAX })).to.deep.equal({
        type: 'complete',
        successorAt: null,
      });
    });
  });

  describe('error', () => {
    it('retries at now + backoff (attempts**4 + 5 s), carrying the error', () => {
      const now = SLOT + MINUTE;
      expect(decide(task({ attempts: 1 }), error(), { nowMs: now, maxAttempts: MAX })).to.deep.equal({ type: 'retry', runAt: now + 6 * SECOND, error: boom });
      expect(decide(task({ attempts: 3 }), error(), { nowMs: now, maxAttempts: MAX })).to.deep.equal({ type: 'retry', runAt: now + 86 * SECOND, error: boom });
    });

    it('retries up to the last attempt and fails when attempts reach maxAttempts', () => {
      expect(decide(task({ attempts: 2 }), error(), { nowMs: SLOT, maxAttempts: 3 }).type).to.equal('retry');
      expect(decide(task({ attempts: 3 }), error(), { nowMs: SLOT, maxAttempts: 3 })).to.deep.equal({
        type: 'fail',
        error: boom,
        successorAt: null,
        uncount: false,
      });
      expect(decide(task({ attempts: 1 }), error(), { nowMs: SLOT, maxAttempts: 1 }).type).to.equal('fail');
    });

    it('fails at once on a permanent error', () => {
      expect(decide(task({ attempts: 1 }), error(true), { nowMs: SLOT, maxAttempts: MAX })).to.deep.equal({
        type: 'fail',
        error: boom,
        successorAt: null,
        uncount: false,
      });
    });

    it('retries a recurring task while the retry lands before its next slot', () => {
      const now = SLOT + MINUTE;
      expect(decide(task({ recurrence: hourly }), error(), { nowMs: now, maxAttempts: MAX })).to.deep.equal({
        type: 'retry',
        runAt: now + 6 * SECOND,
        error: boom,
      });
    });

    it('fails a recurring task whose retry would land after its next slot, and hands over to that slot', () => {
      // attempt 5: 630 s of backoff from 10:55 is 11:05:30, after the 11:00 slot.
      const d = decide(task({ recurrence: hourly, attempts: 5 }), error(), { nowMs: SLOT + 55 * MINUTE, maxAttempts: MAX });
      expect(d).to.deep.equal({ type: 'fail', error: boom, successorAt: SLOT + HOUR, uncount: false });
    });

    it('fails a recurring task whose retry would land exactly on its next slot', () => {
      const d = decide(task({ recurrence: hourly, attempts: 1 }), error(), { nowMs: SLOT + HOUR - 6 * SECOND, maxAttempts: MAX });
      expect(d).to.deep.equal({ type: 'fail', error: boom, successorAt: SLOT + HOUR, uncount: false });
    });

    it('retries a recurring task one millisecond before its next slot', () => {
      const now = SLOT + HOUR - 6 * SECOND - 1;
      expect(decide(task({ recurrence: hourly, attempts: 1 }), error(), { nowMs: now, maxAttempts: MAX })).to.deep.equal({
        type: 'retry',
        runAt: SLOT + HOUR - 1,
        error: boom,
      });
    });

    it('keeps retrying a recurring task that has no next slot (repeatUntil reached)', () => {
      const r: Recurrence = { ...hourly, untilMs: SLOT + HOUR };
      const now = SLOT + 55 * MINUTE;
      expect(decide(task({ recurrence: r, attempts: 5 }), error(), { nowMs: now, maxAttempts: MAX })).to.deep.equal({
        type: 'retry',
        runAt: now + 630 * SECOND,
        error: boom,
      });
    });

    it('schedules the next slot when a recurring task fails for good (repeatOnFailure default)', () => {
      expect(decide(task({ recurrence: hourly, attempts: 3 }), error(), { nowMs: SLOT + MINUTE, maxAttempts: 3 })).to.deep.equal({
        type: 'fail',
        error: boom,
        successorAt: SLOT + HOUR,
        uncount: false,
      });
      expect(decide(task({ recurrence: hourly }), error(true), { nowMs: SLOT + MINUTE, maxAttempts: MAX })).to.deep.include({
        type: 'fail',
        successorAt: SLOT + HOUR,
      });
    });

    it('ends the chain when a recurring task with repeatOnFailure false fails for good', () => {
      const t = task({ recurrence: hourly, repeatOnFailure: false });
      expect(decide({ ...t, attempts: 3 }, error(), { nowMs: SLOT + MINUTE, maxAttempts: 3 })).to.deep.equal({
        type: 'fail',
        error: boom,
        successorAt: null,
        uncount: false,
      });
      expect(decide(t, error(true), { nowMs: SLOT + MINUTE, maxAttempts: MAX })).to.deep.include({ type: 'fail', successorAt: null });
      expect(decide({ ...t, attempts: 5 }, error(), { nowMs: SLOT + 55 * MINUTE, maxAttempts: MAX })).to.deep.include({ type: 'fail', successorAt: null });
    });

    it('still retries a recurring task with repeatOnFailure false while attempts remain', () => {
      const d = decide(task({ recurrence: hourly, repeatOnFailure: false }), error(), { nowMs: SLOT + MINUTE, maxAttempts: MAX });
      expect(d.type).to.equal('retry');
    });
  });

  describe('timeout', () => {
    const timeout: Execution = { kind: 'timeout', error: boom };

    it('counts as a failed attempt: retry with backoff', () => {
      expect(decide(task({ attempts: 2 }), timeout, { nowMs: SLOT, maxAttempts: MAX })).to.deep.equal({ type: 'retry', runAt: SLOT + 21 * SECOND, error: boom });
    });

    it('fails at maxAttempts', () => {
      expect(decide(task({ attempts: 2 }), timeout, { nowMs: SLOT, maxAttempts: 2 })).to.deep.equal({ type: 'fail', error: boom, successorAt: null, uncount: false });
    });
  });

  describe('expired', () => {
    const expired: Execution = { kind: 'expired', error: boom };

    it('fails and gives the attempt back (uncount), whatever the attempts left', () => {
      expect(decide(task({ attempts: 1 }), expired, { nowMs: SLOT + HOUR, maxAttempts: MAX })).to.deep.equal({
        type: 'fail',
        error: boom,
        successorAt: null,
        uncount: true,
      });
    });

    it('hands a recurring task over to its next slot, unless repeatOnFailure is false', () => {
      const now = SLOT + 90 * MINUTE;
      expect(decide(task({ recurrence: hourly }), expired, { nowMs: now, maxAttempts: MAX })).to.deep.equal({
        type: 'fail',
        error: boom,
        successorAt: SLOT + 2 * HOUR,
        uncount: true,
      });
      expect(decide(task({ recurrence: hourly, repeatOnFailure: false }), expired, { nowMs: now, maxAttempts: MAX })).to.deep.equal({
        type: 'fail',
        error: boom,
        successorAt: null,
        uncount: true,
      });
    });
  });

  describe('cancelled', () => {
    it('fails without a successor, even for a recurring task, and keeps the attempt', () => {
      const cancelled: Execution = { kind: 'cancelled', error: boom };
      expect(decide(task({ recurrence: hourly }), cancelled, { nowMs: SLOT + MINUTE, maxAttempts: MAX })).to.deep.equal({
        type: 'fail',
        error: boom,
        successorAt: null,
        uncount: false,
      });
    });
  });

  describe('released and lease-lost', () => {
    it('releases a task the worker stopped (graceful stop)', () => {
      expect(decide(task({ recurrence: hourly }), { kind: 'released' }, { nowMs: SLOT, maxAttempts: MAX })).to.deep.equal({ type: 'release' });
    });

    it('writes nothing when the lease was lost', () => {
      expect(decide(task(), { kind: 'lease-lost' }, { nowMs: SLOT, maxAttempts: MAX })).to.deep.equal({ type: 'none' });
      expect(decide(task({ attempts: MAX }), { kind: 'lease-lost' }, { nowMs: SLOT, maxAttempts: MAX })).to.deep.equal({ type: 'none' });
    });
  });
});

describe('decideExpiredLease', () => {
  const lost = new Error('worker w1 stopped renewing its lease');

  it('makes the task ready at once, without backoff, keeping the attempt', () => {
    const now = SLOT + 10 * MINUTE;
    expect(decideExpiredLease(task({ attempts: 4 }), { nowMs: now, maxAttempts: MAX }, lost)).to.deep.equal({ type: 'retry', runAt: now, error: lost });
  });

  it('fails a task whose attempts are used up', () => {
    expect(decideExpiredLease(task({ attempts: 3 }), { nowMs: SLOT, maxAttempts: 3 }, lost)).to.deep.equal({
      type: 'fail',
      error: lost,
      successorAt: null,
      uncount: false,
    });
  });

  it('hands a used-up recurring task to its next slot, unless repeatOnFailure is false', () => {
    const now = SLOT + 10 * MINUTE;
    expect(decideExpiredLease(task({ attempts: 3, recurrence: hourly }), { nowMs: now, maxAttempts: 3 }, lost)).to.deep.equal({
      type: 'fail',
      error: lost,
      successorAt: SLOT + HOUR,
      uncount: false,
    });
    expect(decideExpiredLease(task({ attempts: 3, recurrence: hourly, repeatOnFailure: false }), { nowMs: now, maxAttempts: 3 }, lost)).to.deep.equal({
      type: 'fail',
      error: lost,
      successorAt: null,
      uncount: false,
    });
  });
});

describe('decideRecordRefused', () => {
  const refused = new Error('refused');
  const at = { nowMs: SLOT + 10 * SECOND };

  it('fails a one-off task for good, with the refusal as its error and its attempt kept', () => {
    for (const d of [{ type: 'complete', successorAt: null } as const, { type: 'retry', runAt: SLOT + HOUR, error: boom } as const]) {
      expect(decideRecordRefused(task(), d, refused, at)).to.deep.equal({ type: 'fail', error: refused, successorAt: null, uncount: false });
    }
  });

  it('hands a repeating task over to its next slot (the success’s, or computed for a retry), unless repeatOnFailure is false', () => {
    const next = SLOT + HOUR;
    expect(decideRecordRefused(task({ recurrence: hourly }), { type: 'complete', successorAt: next }, refused, at)).to.deep.equal({ type: 'fail', error: refused, successorAt: next, uncount: false });
    expect(decideRecordRefused(task({ recurrence: hourly }), { type: 'retry', runAt: SLOT + MINUTE, error: boom }, refused, at).successorAt).to.equal(next);
    expect(decideRecordRefused(task({ recurrence: hourly, repeatOnFailure: false }), { type: 'complete', successorAt: next }, refused, at).successorAt).to.equal(null);
  });

  it('keeps the successor and the attempt count of a decision that was already a failure', () => {
    const d = { type: 'fail', error: boom, successorAt: SLOT + HOUR, uncount: true } as const;
    expect(decideRecordRefused(task(), d, refused, at)).to.deep.equal({ type: 'fail', error: refused, successorAt: SLOT + HOUR, uncount: true });
  });
});

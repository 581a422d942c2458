/** Row helpers: what a recurring task's successor copies, and from which instant. */
import { expect } from 'chai';
import { successorOf } from '../../core/store/rows.js';
import type { TaskRow } from '../../core/types.js';

const base: TaskRow = {
  id: '1', name: 'n', args: '[1]', hash: 'h', queue: 'q', priority: 3, verboseName: 'v', creatorType: 'user', creatorId: '7',
  runAt: 0, scheduledAt: 0, enqueuedAt: 0, attempts: 2, maxAttempts: 4, maxRunTime: 30, expiresAt: null,
  repeatEvery: 3600, repeatCron: null, timezone: null, repeatUntil: null, repeatOnFailure: true, lastError: 'x',
  errors: [], lockedBy: 'w', claimToken: 't', lockedAt: 0, lockedUntil: 0, cancelRequested: false, recurringKey: null,
};

describe('successorOf', () => {
  it('copies the call and its options, at the new slot, with a fresh history', () => {
    const s = successorOf(base, 7_200_000, 5_000);
    expect(s).to.include({ name: 'n', args: '[1]', hash: 'h', queue: 'q', priority: 3, verboseName: 'v', creatorType: 'user', creatorId: '7' });
    expect(s).to.include({ runAt: 7_200_000, scheduledAt: 7_200_000, enqueuedAt: 5_000, maxAttempts: 4, maxRunTime: 30, repeatEvery: 3600 });
  });

  it('measures the expiry window from the scheduled slot, which retries do not move', () => {
    // Scheduled at 0 with expiresAfter 60 s, then retried: run_at moved to 21 s.
    const retried = { ...base, scheduledAt: 0, runAt: 21_000, expiresAt: 60_000 };
    expect(successorOf(retried, 3_600_000, 0).expiresAt).to.equal(3_660_000);
  });
});

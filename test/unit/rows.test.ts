/**
 * Row helpers: what a recurring task's successor copies, and from which instant; reading stored
 * JSON back, and what is reported for text that cannot be read.
 */
import { expect } from 'chai';
import { readArgs, readErrors, readReturnValue, successorOf, toCompletedRow, toTaskRow } from '../../core/store/rows.js';
import type { TaskRow } from '../../core/types.js';

const base: TaskRow = {
  id: '1', name: 'n', args: '[1]', hash: 'h', queue: 'q', priority: 3, verboseName: 'v', creatorType: 'user', creatorId: '7',
  runAt: 0, scheduledAt: 0, enqueuedAt: 0, attempts: 2, maxAttempts: 4, maxRunTime: 30, expiresAt: null,
  repeatEvery: 3600, repeatCron: null, timezone: null, repeatUntil: null, repeatOnFailure: true, lastError: 'x',
  errors: [], lockedBy: 'w', claimToken: 't', lockedAt: 0, lockedUntil: 0, cancelRequested: false, recurringKey: null,
  concurrencyKey: null, snoozes: 0, traceContext: null, idempotencyKey: null,
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

describe('reading stored JSON back', () => {
  it('reads arguments, or says they are not valid JSON or not an array, keeping the text', () => {
    expect(readArgs('[1,{"a":2}]')).to.deep.equal({ value: [1, { a: 2 }] });
    const bad = readArgs('{bad');
    expect(bad).to.include({ text: '{bad', reason: 'not valid JSON' });
    expect((bad as { parseError: string }).parseError).to.match(/JSON/);
    expect(readArgs('{"a":1}')).to.deep.equal({ text: '{"a":1}', reason: 'not a JSON array', parseError: null });
  });

  it('reads a return value (undefined for none), or says it is not valid JSON', () => {
    expect(readReturnValue(null)).to.deep.equal({ value: undefined });
    expect(readReturnValue('null')).to.deep.equal({ value: null });
    expect(readReturnValue('"x"')).to.deep.equal({ value: 'x' });
    expect(readReturnValue('nope')).to.include({ text: 'nope', reason: 'not valid JSON' });
  });

  it('reads an error history; text that is not JSON, not a list, or a list of non-records is reported whole', () => {
    const rec = { class: 'Error', message: 'm', stack: 's', attempt: 1, at: 5, workerId: 'w' };
    expect(readErrors(null)).to.deep.equal([]);
    expect(readErrors(JSON.stringify([rec]))).to.deep.equal([rec]);
    // Optional fields missing: filled in, so readers never meet undefined.
    expect(readErrors('[{"class":"E","message":"m"}]')).to.deep.equal([{ class: 'E', message: 'm', stack: '', attempt: 0, at: 0, workerId: null }]);
    expect(readErrors('[{"class":')).to.include({ text: '[{"class":', reason: 'not valid JSON' });
    for (const text of ['{"class":"E","message":"m"}', '[1]', '[{"message":"m"}]']) {
      expect(readErrors(text), text).to.deep.equal({ text, reason: 'not a JSON array of error records', parseError: null });
    }
  });

  it('maps a row with an unreadable history to an empty one, naming the text', () => {
    const row = { id: 1, name: 'n', args: '[]', hash: 'h', priority: 0, run_at: 0, scheduled_at: 0, enqueued_at: 0, attempts: 0, errors: 'oops' };
    const t = toTaskRow(row);
    expect(t.errors).to.deep.equal([]);
    expect(t.errorsUnreadable).to.include({ text: 'oops', reason: 'not valid JSON' });
    expect(toTaskRow({ ...row, errors: null }).errorsUnreadable).to.equal(null);
    const c = toCompletedRow({ ...row, task_id: 1, finished_at: 0 });
    expect(c.errors).to.deep.equal([]);
    expect(c.errorsUnreadable).to.include({ text: 'oops' });
  });
});

/** core/policy/when.ts: checking and resolving `schedule(when)` values. */
import { expect } from 'chai';
import { checkWhen, durationMs, MAX_SPAN_SECONDS, MAX_TIME_MS, MIN_TIME_MS, resolveWhen } from '../../core/policy/when.js';
import { ValidationError } from '../../core/errors.js';

const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('checkWhen', () => {
  it('returns undefined for undefined (the task default)', () => {
    expect(checkWhen(undefined, 'when')).to.equal(undefined);
  });

  it('accepts seconds >= 0, fractions included, and returns them unchanged', () => {
    expect(checkWhen(0, 'when')).to.equal(0);
    expect(checkWhen(90, 'when')).to.equal(90);
    expect(checkWhen(0.25, 'when')).to.equal(0.25);
  });

  it('rejects negative, NaN and infinite seconds, naming the label and the value', () => {
    expect(messageOf(() => checkWhen(-1, 'schedule(when)'))).to.match(/^Invalid schedule\(when\): -1 — expected seconds from now/);
    expect(messageOf(() => checkWhen(NaN, 'schedule(when)'))).to.match(/^Invalid schedule\(when\): NaN — /);
    expect(messageOf(() => checkWhen(Infinity, 'schedule(when)'))).to.match(/^Invalid schedule\(when\): Infinity — /);
  });

  it('accepts a valid Date and rejects an Invalid Date', () => {
    const d = new Date(NOW);
    expect(checkWhen(d, 'when')).to.equal(d);
    expect(messageOf(() => checkWhen(new Date('nope'), 'when'))).to.equal('Invalid when: an Invalid Date — expected a valid Date');
  });

  it('accepts duration objects, the empty one included', () => {
    const d = { hours: 1, minutes: 30 };
    expect(checkWhen(d, 'when')).to.equal(d);
    expect(checkWhen({}, 'when')).to.deep.equal({});
  });

  it('rejects unknown duration fields, listing the known ones', () => {
    expect(messageOf(() => checkWhen({ mins: 5 }, 'when'))).to.equal(
      'Invalid when: unknown duration field "mins" — expected seconds, minutes, hours, days or weeks',
    );
  });

  it('rejects negative, infinite or non-numeric duration fields', () => {
    expect(messageOf(() => checkWhen({ minutes: -5 }, 'when'))).to.equal('Invalid when: minutes is -5 — expected a finite number >= 0');
    expect(messageOf(() => checkWhen({ hours: '2' }, 'when'))).to.equal('Invalid when: hours is "2" — expected a finite number >= 0');
    expect(messageOf(() => checkWhen({ days: Infinity }, 'when'))).to.match(/^Invalid when: days is .* — expected a finite number >= 0$/);
  });

  it('rejects strings, booleans, arrays and null', () => {
    for (const bad of ['90', true, [90], null]) {
      expect(messageOf(() => checkWhen(bad, 'when'))).to.match(/^Invalid when: .* — expected seconds from now/);
    }
  });
});

describe('resolveWhen', () => {
  it('is now for undefined and for 0 (the reference ignored 0)', () => {
    expect(resolveWhen(undefined, NOW)).to.equal(NOW);
    expect(resolveWhen(0, NOW)).to.equal(NOW);
  });

  it('adds seconds, fractions included', () => {
    expect(resolveWhen(90, NOW)).to.equal(NOW + 90_000);
    expect(resolveWhen(1.5, NOW)).to.equal(NOW + 1500);
  });

  it('takes a Date as an absolute time, whatever now is', () => {
    const at = new Date(Date.UTC(2031, 5, 1));
    expect(resolveWhen(at, NOW)).to.equal(at.getTime());
    expect(resolveWhen(at, 0)).to.equal(at.getTime());
  });

  it('adds duration objects, summing their fields', () => {
    expect(resolveWhen({ minutes: 5 }, NOW)).to.equal(NOW + 300_000);
    expect(resolveWhen({ hours: 1, minutes: 30, seconds: 15 }, NOW)).to.equal(NOW + 5_415_000);
    expect(resolveWhen({ weeks: 1, days: 1 }, NOW)).to.equal(NOW + 8 * 86_400_000);
    expect(resolveWhen({}, NOW)).to.equal(NOW);
  });

  it('rounds to whole milliseconds', () => {
    expect(resolveWhen(0.0004, NOW)).to.equal(NOW);
    expect(resolveWhen({ seconds: 0.0016 }, NOW)).to.equal(NOW + 2);
  });
});

describe('durationMs', () => {
  it('converts each unit', () => {
    expect(durationMs({ seconds: 1 })).to.equal(1000);
    expect(durationMs({ minutes: 1 })).to.equal(60_000);
    expect(durationMs({ hours: 1 })).to.equal(3_600_000);
    expect(durationMs({ days: 1 })).to.equal(86_400_000);
    expect(durationMs({ weeks: 1 })).to.equal(604_800_000);
  });
});

describe('the range of times a task may carry (stored as BIGINT ms, read back as Dates)', () => {
  it('is 0000-01-01 to 9999-12-31 UTC', () => {
    expect(new Date(MIN_TIME_MS).toISOString()).to.equal('0000-01-01T00:00:00.000Z');
    expect(new Date(MAX_TIME_MS).toISOString()).to.equal('9999-12-31T23:59:59.999Z');
  });

  it('refuses schedule(1e15) (it was stored, then read back as runAt: null), naming the value and the range', () => {
    expect(messageOf(() => checkWhen(1e15, 'schedule(when)'))).to.match(/^Invalid schedule\(when\): 1000000000000000 — expected seconds from now \(a finite number >= 0 and <= 253402300799, so the time is between 0000-01-01 and 9999-12-31 \(UTC\)\)/);
  });

  it('refuses a Date after 9999-12-31 or before year 0, and a duration object longer than the range', () => {
    expect(messageOf(() => checkWhen(new Date(Date.UTC(10000, 0, 1)), 'when'))).to.equal('Invalid when: +010000-01-01T00:00:00.000Z — expected a Date between 0000-01-01 and 9999-12-31 (UTC)');
    expect(messageOf(() => checkWhen(new Date(MIN_TIME_MS - 1), 'when'))).to.match(/^Invalid when: -000001-12-31T23:59:59\.999Z — expected a Date between/);
    expect(messageOf(() => checkWhen({ weeks: 1e12 }, 'when'))).to.match(/^Invalid when: a duration of 604800000000000000 seconds — expected at most 253402300799/);
  });

  it('accepts the last time and the longest delay that checkWhen allows from 1970', () => {
    expect(checkWhen(new Date(MAX_TIME_MS), 'when')).to.be.instanceOf(Date);
    expect(checkWhen(MAX_SPAN_SECONDS, 'when')).to.equal(MAX_SPAN_SECONDS);
    expect(resolveWhen(new Date(MAX_TIME_MS), NOW)).to.equal(MAX_TIME_MS);
  });

  it('resolveWhen refuses a relative time that lands after 9999-12-31 from now', () => {
    expect(messageOf(() => resolveWhen(MAX_SPAN_SECONDS, NOW))).to.equal('Invalid when: 253402300799 seconds from now — expected a time between 0000-01-01 and 9999-12-31 (UTC)');
    expect(messageOf(() => resolveWhen({ days: 2_932_000 }, NOW))).to.match(/^Invalid when: \d+ ms since 1970 — expected a time between/);
  });
});

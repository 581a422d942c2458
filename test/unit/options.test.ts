/**
 * core/policy/options.ts: option validation (unknown keys, each option's values, the removeExisting
 * conflict), merging with explicit 0/null winning, and the effective dedupe action.
 */
import { expect } from 'chai';
import { CALL_OPTION_KEYS, checkOptions, effectiveAction, mergeOptions } from '../../core/policy/options.js';
import { ValidationError } from '../../core/errors.js';
import { PRIORITY_MAX, PRIORITY_MIN } from '../../core/types.js';

const WHERE = 'schedule() options';

function check(opts: Record<string, unknown>): void {
  checkOptions(opts, CALL_OPTION_KEYS, WHERE);
}

function messageOf(opts: Record<string, unknown>): string {
  try {
    check(opts);
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(opts)} to be rejected`);
}

describe('checkOptions', () => {
  it('accepts an empty object and undefined values', () => {
    expect(() => check({})).to.not.throw();
    expect(() => check({ queue: undefined, priority: undefined })).to.not.throw();
  });

  it('rejects unknown keys, naming the key, the place and the allowed keys', () => {
    const msg = messageOf({ priorty: 5 });
    expect(msg).to.match(/^Unknown option "priorty" in schedule\(\) options — expected one of: queue, priority, maxAttempts/);
  });

  it('rejects a key not allowed at this level even if it is an option elsewhere', () => {
    expect(() => checkOptions({ verboseName: 'x' }, ['queue'], 'background() options')).to.throw(
      ValidationError,
      /Unknown option "verboseName" in background\(\) options — expected one of: queue$/,
    );
  });

  const cases: Array<{ key: string; good: unknown[]; bad: unknown[]; expected: RegExp }> = [
    { key: 'queue', good: ['mail', null, 'q'.repeat(190)], bad: ['', 'q'.repeat(191), 5], expected: /a queue name \(1 to 190 characters\) or null/ },
    { key: 'priority', good: [0, -5, PRIORITY_MIN, PRIORITY_MAX], bad: [1.5, PRIORITY_MAX + 1, PRIORITY_MIN - 1, '5', null], expected: /an integer \(32-bit\)/ },
    { key: 'maxAttempts', good: [1, 25], bad: [0, -1, 2.5, null, '3'], expected: /an integer >= 1/ },
    { key: 'maxRunTime', good: [0.5, 3600], bad: [0, -1, Infinity, NaN, null, '60'], expected: /a number of seconds > 0/ },
    { key: 'expiresAfter', good: [null, 30, 0.1], bad: [0, -1, Infinity, '30'], expected: /a number of seconds > 0/ },
    { key: 'removeExisting', good: [true, false], bad: [1, 'true', null], expected: /true or false/ },
    { key: 'action', good: ['schedule', 'rescheduleExisting', 'checkExisting', 'replaceExisting'], bad: ['replace', null, 1], expected: /one of schedule, rescheduleExisting, checkExisting, replaceExisting/ },
    { key: 'repeat', good: [null, 0, 3600, 0.5], bad: [-1, Infinity, NaN, true, { every: 5 }], expected: /seconds >= 0 \(0 = never\), a Repeat constant, or a cron expression/ },
    { key: 'repeatUntil', good: [null, new Date(Date.UTC(2031, 0, 1))], bad: ['2031-01-01', 1_900_000_000_000], expected: /a Date or null/ },
    { key: 'timezone', good: [null, 'UTC', 'Europe/Berlin', 'Pacific/Chatham'], bad: ['Mars/Olympus', '', 5], expected: /an IANA time zone name/ },
    { key: 'repeatOnFailure', good: [true, false], bad: [0, 'false', null], expected: /true or false/ },
    { key: 'verboseName', good: [null, '', 'v'.repeat(255)], bad: ['v'.repeat(256), 5], expected: /a string of at most 255 characters, or null/ },
    {
      key: 'creator',
      good: [null, { type: 'user', id: 1 }, { type: 'user', id: 'abc' }],
      bad: [{ type: '', id: 1 }, { type: 'user' }, { type: 'user', id: NaN }, { type: 'user', id: {} }, { type: 'u'.repeat(191), id: 1 }, { type: 'user', id: '1'.repeat(191) }, 'user:1'],
      expected: /a \{ type, id \} reference/,
    },
  ];

  for (const c of cases) {
    it(`validates ${c.key}`, () => {
      for (const v of c.good) expect(() => check({ [c.key]: v }), `${c.key} = ${String(v)}`).to.not.throw();
      for (const v of c.bad) {
        const msg = messageOf({ [c.key]: v });
        expect(msg).to.match(new RegExp(`^Invalid ${c.key} in schedule\\(\\) options: `));
        expect(msg).to.match(c.expected);
      }
    });
  }

  it('rejects an Invalid Date as repeatUntil with a ValidationError', () => {
    expect(messageOf({ repeatUntil: new Date('nope') })).to.match(/^Invalid repeatUntil in schedule\(\) options: .* — expected a Date or null \(a Date between 0000-01-01 and 9999-12-31 \(UTC\)\)$/);
  });

  it('shows the rejected value in the message', () => {
    expect(messageOf({ queue: '' })).to.equal('Invalid queue in schedule() options: "" — expected a queue name (1 to 190 characters) or null');
    expect(messageOf({ maxAttempts: 0 })).to.equal('Invalid maxAttempts in schedule() options: 0 — expected an integer >= 1');
  });

  it('gives Intl’s reason for a rejected time zone', () => {
    expect(messageOf({ timezone: 'Mars/Olympus' })).to.equal(
      'Invalid timezone in schedule() options: "Mars/Olympus" — expected an IANA time zone name such as "Europe/Berlin", or null (Invalid time zone specified: Mars/Olympus)',
    );
  });

  it('rejects a repeat string that is not a cron expression', () => {
    expect(messageOf({ repeat: 'every hour' })).to.match(/^Invalid repeat in schedule\(\) options: "every hour"/);
  });

  it('rejects removeExisting: true together with another action', () => {
    for (const action of ['schedule', 'checkExisting', 'rescheduleExisting']) {
      const msg = messageOf({ removeExisting: true, action });
      expect(msg).to.contain('removeExisting: true cannot be combined with action');
      expect(msg).to.contain(`"${action}"`);
    }
  });

  it('accepts removeExisting: true with action replaceExisting, and removeExisting: false with any action', () => {
    expect(() => check({ removeExisting: true, action: 'replaceExisting' })).to.not.throw();
    expect(() => check({ removeExisting: false, action: 'checkExisting' })).to.not.throw();
  });
});

describe('mergeOptions', () => {
  it('takes each key from the highest layer that sets it', () => {
    const merged = mergeOptions({ priority: 5 }, { priority: 3, queue: 'using' }, { queue: 'definition', maxAttempts: 2 });
    expect(merged).to.deep.equal({ priority: 5, queue: 'using', maxAttempts: 2 });
  });

  it('lets an explicit 0, false or null at a higher layer win over a value below', () => {
    const merged = mergeOptions(
      { priority: 0, queue: null, expiresAfter: null, repeat: 0, repeatOnFailure: false },
      { priority: 10, queue: 'mail', expiresAfter: 60, repeat: 3600, repeatOnFailure: true },
    );
    expect(merged).to.deep.equal({ priority: 0, queue: null, expiresAfter: null, repeat: 0, repeatOnFailure: false });
  });

  it('lets undefined fall through to the layer below', () => {
    expect(mergeOptions({ priority: undefined }, undefined, { priority: 7 })).to.deep.equal({ priority: 7 });
  });

  it('merges action and removeExisting as one choice: the highest layer that sets either decides', () => {
    expect(mergeOptions({ removeExisting: true }, { action: 'checkExisting' })).to.deep.equal({ action: 'replaceExisting' });
    expect(mergeOptions({ removeExisting: false }, { action: 'replaceExisting' })).to.deep.equal({ action: 'schedule' });
    expect(mergeOptions({ action: 'rescheduleExisting' }, { removeExisting: true })).to.deep.equal({ action: 'rescheduleExisting' });
    expect(mergeOptions({ queue: 'a' }, { removeExisting: true })).to.deep.equal({ queue: 'a', action: 'replaceExisting' });
  });

  it('merges nothing from no layers', () => {
    expect(mergeOptions()).to.deep.equal({});
  });

  it('keeps only call options', () => {
    const merged = mergeOptions({ queue: 'a', db: {}, connection: 'x', schedule: 5 } as never);
    expect(merged).to.deep.equal({ queue: 'a' });
  });
});

describe('effectiveAction', () => {
  it('is schedule by default', () => {
    expect(effectiveAction({})).to.equal('schedule');
    expect(effectiveAction({ removeExisting: false })).to.equal('schedule');
  });

  it('is replaceExisting for removeExisting: true', () => {
    expect(effectiveAction({ removeExisting: true })).to.equal('replaceExisting');
  });

  it('is the explicit action when one is given', () => {
    expect(effectiveAction({ action: 'checkExisting' })).to.equal('checkExisting');
    expect(effectiveAction({ action: 'rescheduleExisting', removeExisting: false })).to.equal('rescheduleExisting');
  });

  it('lets a call-site action win over a definition removeExisting', () => {
    expect(effectiveAction(mergeOptions({ action: 'checkExisting' }, {}, { removeExisting: true }))).to.equal('checkExisting');
  });

  it('lets a call-site removeExisting: true win over a definition action (it is action replaceExisting)', () => {
    // Call site > .using() > background(): removeExisting is the reference's spelling of
    // action "replaceExisting", so the call site's choice must not lose to the definition's action.
    expect(effectiveAction(mergeOptions({ removeExisting: true }, {}, { action: 'checkExisting' }))).to.equal('replaceExisting');
  });
});

describe('option values databases cannot store', () => {
  it('refuses NUL (U+0000) in queue, verboseName and creator, naming the option (PostgreSQL text cannot hold it)', () => {
    expect(messageOf({ queue: 'ma\u0000il' })).to.equal(
      'Invalid queue in schedule() options: "ma\\u0000il" — expected text without the NUL character (U+0000), which databases cannot store as text',
    );
    expect(messageOf({ verboseName: 'report\u0000' })).to.match(/^Invalid verboseName in schedule\(\) options: "report\\u0000" — expected text without the NUL character/);
    expect(messageOf({ creator: { type: 'us\u0000er', id: 1 } })).to.match(/^Invalid creator in schedule\(\) options \(type\): /);
    expect(messageOf({ creator: { type: 'user', id: '4\u00002' } })).to.match(/^Invalid creator in schedule\(\) options \(id\): /);
  });

  it('refuses expiresAfter, a repeat interval and repeatUntil beyond 9999-12-31 (they were stored as times no Date can hold)', () => {
    expect(messageOf({ expiresAfter: 1e15 })).to.match(/^Invalid expiresAfter in schedule\(\) options: 1000000000000000 — expected a number of seconds > 0 and <= 253402300799/);
    expect(messageOf({ repeat: 1e15 })).to.match(/^Invalid repeat in schedule\(\) options: 1000000000000000 — expected seconds >= 0 \(0 = never\), a Repeat constant, or a cron expression \(at most 253402300799 seconds\)$/);
    expect(messageOf({ repeatUntil: new Date(Date.UTC(10000, 0, 1)) })).to.match(/^Invalid repeatUntil in schedule\(\) options: \+010000-01-01T00:00:00\.000Z — expected a Date or null \(a Date between 0000-01-01 and 9999-12-31 \(UTC\)\)$/);
  });
});

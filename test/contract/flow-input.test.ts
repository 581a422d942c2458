/**
 * Bad flow-control input, on every database where something could be stored: limits that are
 * zero, negative, fractional or not numbers and periods of 0 are refused when the task is defined
 * (or the setting read); a concurrency key function that throws or returns something other than a
 * string of 1 to 190 characters fails the enqueue with a ValidationError naming the task, and
 * nothing is stored (in bulk, the whole batch); the call site's key is checked too.
 */
import { expect } from 'chai';
import { background, ConfigError, schedule, ValidationError } from '../../core/index.js';
import { resolveSettings } from '../../core/config/settings.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { countRows, taskRows } from '../helpers/stored-rows.js';

const keyOf = (v: unknown) => (v === 'throw' ? (() => { throw new Error('no tenant for this call'); })() : v);
const keyed = background({ name: 'input.keyed', concurrencyKey: (v: unknown) => keyOf(v) as string }, function keyed(v: unknown) {
  return v;
});
const fixed = background({ name: 'input.fixed', concurrencyKey: 'tenant:1' }, function fixed(n: number) {
  return n;
});

const T0 = Date.UTC(2031, 3, 4, 5);

describe('flow-control options of background()', () => {
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['concurrency 0', { concurrency: 0 }, /concurrency.*: 0 — expected a whole number of tasks >= 1/],
    ['concurrency -1', { concurrency: -1 }, /-1 — expected a whole number/],
    ['concurrency 2.5', { concurrency: 2.5 }, /2\.5 — expected a whole number/],
    ['concurrency "3"', { concurrency: '3' }, /"3" — expected a whole number/],
    ['concurrency NaN', { concurrency: Number.NaN }, /NaN — expected a whole number/],
    ['concurrencyLimit 0', { concurrencyLimit: 0 }, /concurrencyLimit.*: 0/],
    ['concurrencyLimit 1.5', { concurrencyLimit: 1.5 }, /1\.5/],
    ['rateLimit limit 0', { rateLimit: { limit: 0, period: 1 } }, /rateLimit.*limit: 0/],
    ['rateLimit limit -3', { rateLimit: { limit: -3, period: 1 } }, /limit: -3/],
    ['rateLimit limit 1.5', { rateLimit: { limit: 1.5, period: 1 } }, /limit: 1\.5/],
    ['rateLimit limit "5"', { rateLimit: { limit: '5', period: 1 } }, /limit: "5"/],
    ['rateLimit period 0', { rateLimit: { limit: 5, period: 0 } }, /period: 0 — expected a number of seconds > 0/],
    ['rateLimit period -1', { rateLimit: { limit: 5, period: -1 } }, /period: -1/],
    ['rateLimit period "2"', { rateLimit: { limit: 5, period: '2' } }, /period: "2"/],
    ['rateLimit without a period', { rateLimit: { limit: 5 } }, /period: undefined/],
    ['rateLimit perKey "yes"', { rateLimit: { limit: 5, period: 1, perKey: 'yes' } }, /perKey: "yes" — expected true or false/],
    ['rateLimit as text', { rateLimit: '50/2' }, /"50\/2" — expected \{ limit, period \}/],
    ['concurrencyKey 7', { concurrencyKey: 7 }, /concurrencyKey.*: 7 — expected a string of 1 to 190 characters/],
    ['concurrencyKey ""', { concurrencyKey: '' }, /concurrencyKey.*: "" — expected a string of 1 to 190/],
  ];
  for (const [what, options, message] of bad) {
    it(`refuses ${what} when the task is defined, naming the value`, () => {
      expect(() => background({ name: `input.bad.${what}`, ...options }, function bad() {})).to.throw(ValidationError, message);
    });
  }

  it('refuses bad queue limits and maxSnoozes in the settings, naming the setting', async () => {
    const read = (overrides: Record<string, unknown>, env: Record<string, string> = {}) => resolveSettings({ cwd: '/', env, overrides }).then(() => null, (e: unknown) => e);
    for (const queues of [{ mail: { concurrency: 0 } }, { mail: { rateLimit: { limit: 5, period: 0 } } }, { mail: { paused: true } }, { '': { concurrency: 1 } }, [1]]) {
      const err = await read({ queues });
      expect(err, JSON.stringify(queues)).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(/queues/);
    }
    for (const maxSnoozes of [-1, 1.5, 'x']) expect(await read({ maxSnoozes }), String(maxSnoozes)).to.be.instanceOf(ConfigError);
    const env = await read({}, { BGTASKS_MAX_SNOOZES: 'ten' });
    expect((env as Error).message).to.match(/BGTASKS_MAX_SNOOZES/);
    expect((await resolveSettings({ cwd: '/', env: { BGTASKS_MAX_SNOOZES: '0' }, overrides: {} })).maxSnoozes).to.equal(0);
  });
});

contract('bad concurrency keys at enqueue', (db) => {
  manualClockSuite(db, T0);

  const badKeys: Array<[string, unknown, RegExp]> = [
    ['throws', 'throw', /input\.keyed: its concurrencyKey function threw for these arguments: no tenant for this call/],
    ['returns a number', 7, /concurrencyKey of input\.keyed \(what its function returned\): 7 — expected a string of 1 to 190 characters/],
    ['returns an empty string', '', /: "" — expected a string/],
    ['returns null', null, /: null — expected a string/],
    ['returns 191 characters', 'k'.repeat(191), /expected a string of 1 to 190 characters/],
  ];
  for (const [what, value, message] of badKeys) {
    it(`a key function that ${what} fails the enqueue with a ValidationError naming the task; nothing is stored`, async () => {
      const err = await keyed(value).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as Error).message).to.match(message);
      expect(await countRows(db, db.store.tables.tasks)).to.equal(0);
    });
  }

  it('in bulk, one bad key refuses the whole batch, naming the call', async () => {
    const err = await keyed.bulk([['a'], ['b'], ['throw'], ['c']]).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as Error).message).to.match(/input\.keyed\.bulk\(\): call 3: input\.keyed: its concurrencyKey function threw/);
    expect(await countRows(db, db.store.tables.tasks)).to.equal(0);
  });

  it('stores the key of each call (bulk too), the call site\'s key over the definition\'s, and none for null', async () => {
    await keyed('user:1');
    await keyed.bulk([['user:2'], ['user:3']]);
    await keyed('user:4', schedule(0, { concurrencyKey: 'vip' }));
    await keyed('throw', schedule(0, { concurrencyKey: null }));
    await fixed(1);
    await fixed(2, schedule(0, { concurrencyKey: 'tenant:2' }));
    expect((await taskRows(db)).map((r) => r.concurrency_key)).to.deep.equal(['user:1', 'user:2', 'user:3', 'vip', null, 'tenant:1', 'tenant:2']);
  });

  it('refuses a bad call-site key, naming it; nothing is stored', async () => {
    for (const key of [5, '', 'k'.repeat(191), 'a\u0000b']) {
      // schedule() checks its options at once (it throws before anything is enqueued).
      const err = await (async () => fixed(1, schedule(0, { concurrencyKey: key as string })))().catch((e: unknown) => e);
      expect(err, JSON.stringify(key)).to.be.instanceOf(ValidationError);
      expect((err as Error).message).to.match(/Invalid concurrencyKey in schedule\(\) options: .+ — expected a string of 1 to 190 characters/);
    }
    expect(await countRows(db, db.store.tables.tasks)).to.equal(0);
  });
});

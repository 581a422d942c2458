/**
 * Values a database column cannot hold are refused at enqueue with a ValidationError naming the
 * option, on every database, and nothing is stored: times after 9999-12-31 (stored as BIGINT ms,
 * read back as Dates: `schedule(1e15)` used to come back as `runAt: null`) and the NUL character
 * in text (PostgreSQL refuses it with a raw driver error).
 */
import { expect } from 'chai';
import { background, schedule, ValidationError, getResult } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const noted = background({ name: 'unstorable.noted' }, function noted(n: number) {
  return n;
});

const T0 = Date.UTC(2031, 5, 1, 12);

async function rejection(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(ValidationError);
    return err as Error;
  }
  return expect.fail('expected a ValidationError');
}

contract('values a column cannot hold are refused at enqueue', (db) => {
  manualClockSuite(db, T0);
  const stored = async () => {
    const n = async (table: string) => Number(((await db.store.knex(table).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
    return (await n(db.store.tables.tasks)) + (await n(db.store.tables.completed));
  };

  it('schedule(1e15) (seconds) is a ValidationError naming the value and the range; nothing is stored', async () => {
    const err = await rejection(() => noted(1, schedule(1e15)));
    expect(err.message).to.match(/^Invalid schedule\(when\): 1000000000000000 — expected seconds from now \(a finite number >= 0 and <= 253402300799, so the time is between 0000-01-01 and 9999-12-31 \(UTC\)\)/);
    expect(await stored()).to.equal(0);
  });

  it('a delay that lands after 9999-12-31, a Date after it, expiresAfter and repeat beyond it: each refused, nothing stored', async () => {
    expect((await rejection(() => noted(1, schedule(253_402_300_799)))).message).to.match(/^Invalid when: 253402300799 seconds from now — expected a time between 0000-01-01 and 9999-12-31 \(UTC\)$/);
    expect((await rejection(() => noted(1, schedule(new Date(Date.UTC(10000, 0, 1)))))).message).to.match(/^Invalid schedule\(when\): \+010000-01-01T00:00:00\.000Z/);
    expect((await rejection(() => noted(1, schedule(0, { expiresAfter: 1e15 })))).message).to.match(/^Invalid expiresAfter in schedule\(\) options: 1000000000000000/);
    expect((await rejection(() => noted(1, schedule(0, { repeat: 1e15 })))).message).to.match(/^Invalid repeat in schedule\(\) options: 1000000000000000/);
    expect((await rejection(() => noted.bulk([[1], [2]], { when: 1e15 }))).message).to.match(/^Invalid when in unstorable\.noted\.bulk\(\) options: 1000000000000000/);
    expect(await stored()).to.equal(0);
  });

  it('the last time of the range, 9999-12-31T23:59:59.999Z, is stored and read back exactly', async () => {
    const last = new Date('9999-12-31T23:59:59.999Z');
    const ref = await noted(1, schedule(last, { expiresAfter: 253_402_300_799, repeatUntil: last }));
    expect(ref.runAt.toISOString()).to.equal(last.toISOString());
    const result = await getResult(ref);
    expect(result.runAt.toISOString()).to.equal('9999-12-31T23:59:59.999Z');
  });

  it('NUL (U+0000) in queue, verboseName or creator is a ValidationError naming the option; nothing is stored', async () => {
    expect((await rejection(() => noted(1, schedule(0, { queue: 'ma\u0000il' })))).message).to.equal(
      'Invalid queue in schedule() options: "ma\\u0000il" — expected text without the NUL character (U+0000), which databases cannot store as text',
    );
    expect((await rejection(() => noted(1, schedule(0, { verboseName: 'monthly\u0000report' })))).message).to.match(/^Invalid verboseName in schedule\(\) options: "monthly\\u0000report"/);
    expect((await rejection(() => noted(1, schedule(0, { creator: { type: 'user', id: 'a\u0000' } })))).message).to.match(/^Invalid creator in schedule\(\) options \(id\)/);
    expect((await rejection(() => noted.using({ queue: 'q\u0000' })(1))).message).to.match(/^Invalid queue in \.using\(\) options/);
    expect((await rejection(() => noted.bulk([[1], [2]], { queue: '\u0000' }))).message).to.match(/^Invalid queue in unstorable\.noted\.bulk\(\) options/);
    expect(await stored()).to.equal(0);
  });

  it('NUL in a task name is refused when the task is defined', () => {
    expect(() => background({ name: 'bad\u0000name' }, function bad() {})).to.throw(ValidationError, /^Invalid task name: "bad\\u0000name" — expected text without the NUL character/);
  });
});

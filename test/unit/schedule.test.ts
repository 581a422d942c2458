/** core/api/schedule.ts: `schedule(when, options?)` makes a branded, frozen, validated object. */
import { expect } from 'chai';
import knexFactory from 'knex';
import { isSchedule, schedule, type ScheduleOptions } from '../../core/api/schedule.js';
import { ValidationError } from '../../core/errors.js';

describe('schedule', () => {
  it('brands its object, so isSchedule tells it from a task argument', () => {
    const s = schedule(90, { priority: 5 });
    expect(isSchedule(s)).to.equal(true);
    expect(isSchedule({ when: 90, options: { priority: 5 } })).to.equal(false);
    expect(isSchedule(null)).to.equal(false);
    expect(isSchedule(90)).to.equal(false);
  });

  it('keeps the brand out of the enumerable fields', () => {
    expect(Object.keys(schedule(90))).to.deep.equal(['when', 'options']);
  });

  it('recognises the brand of another copy of the package (Symbol.for)', () => {
    expect(isSchedule({ [Symbol.for('bgtasks.schedule')]: true, when: 1, options: {} })).to.equal(true);
  });

  it('carries when and a copy of the options, both frozen', () => {
    const options: ScheduleOptions = { priority: 5, queue: 'mail' };
    const s = schedule({ minutes: 5 }, options);
    expect(s.when).to.deep.equal({ minutes: 5 });
    expect(s.options).to.deep.equal({ priority: 5, queue: 'mail' });
    expect(s.options).to.not.equal(options);
    expect(Object.isFrozen(s)).to.equal(true);
    expect(Object.isFrozen(s.options)).to.equal(true);
  });

  it('allows no when (the task default) and no options', () => {
    const s = schedule();
    expect(s.when).to.equal(undefined);
    expect(s.options).to.deep.equal({});
    expect(schedule(0).when).to.equal(0);
  });

  it('accepts a Date', () => {
    const at = new Date(Date.UTC(2031, 0, 1));
    expect(schedule(at).when).to.equal(at);
  });

  it('validates when', () => {
    expect(() => schedule(-1)).to.throw(ValidationError, /^Invalid schedule\(when\): -1/);
    expect(() => schedule(new Date('nope'))).to.throw(ValidationError, /^Invalid schedule\(when\): an Invalid Date/);
    expect(() => schedule({ mins: 5 } as never)).to.throw(ValidationError, /unknown duration field "mins"/);
    expect(() => schedule('90' as never)).to.throw(ValidationError, /^Invalid schedule\(when\): string/);
  });

  it('validates the options', () => {
    expect(() => schedule(0, { priority: 1.5 })).to.throw(ValidationError, /^Invalid priority in schedule\(\) options: 1.5/);
    expect(() => schedule(0, { maxAttempts: 0 })).to.throw(ValidationError, /^Invalid maxAttempts in schedule\(\) options/);
    expect(() => schedule(0, { removeExisting: true, action: 'checkExisting' })).to.throw(ValidationError, /cannot be combined/);
  });

  it('accepts db and connection, which only the call site has', () => {
    expect(schedule(0, { connection: 'reports' }).options.connection).to.equal('reports');
    expect(() => schedule(0, { connection: 5 as never })).to.throw(ValidationError, /^Invalid connection in schedule\(\) options/);
  });

  it('refuses a db that is not a knex instance or transaction, naming it (it threw "db.transaction is not a function" at enqueue; null was ignored)', () => {
    const expected = ' — expected a knex instance or a knex transaction (leave db out for the configured database; a named database is chosen with connection)';
    expect(() => schedule(0, { db: {} as never })).to.throw(ValidationError, `Invalid db in schedule() options: an object${expected}`);
    expect(() => schedule(0, { db: 'sqlite:x' as never })).to.throw(ValidationError, `Invalid db in schedule() options: "sqlite:x"${expected}`);
    expect(() => schedule(0, { db: null as never })).to.throw(ValidationError, `Invalid db in schedule() options: null${expected}`);
    expect(() => schedule(0, { db: (() => {}) as never })).to.throw(ValidationError, /^Invalid db in schedule\(\) options: /);
  });

  it('accepts a knex instance and a knex transaction as db', async () => {
    const knex = knexFactory({ client: 'sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
    try {
      expect(schedule(0, { db: knex }).options.db).to.equal(knex);
      await knex.transaction(async (trx) => {
        expect(schedule(0, { db: trx }).options.db).to.equal(trx);
      });
    } finally {
      await knex.destroy();
    }
  });

  it('rejects unknown options', () => {
    expect(() => schedule(0, { priorty: 5 } as never)).to.throw(ValidationError, /^Unknown option "priorty" in schedule\(\) options — expected one of: /);
  });

  it('rejects options that are not an object', () => {
    for (const bad of [null, 5, 'x', []]) {
      expect(() => schedule(0, bad as never), String(bad)).to.throw(ValidationError, 'Invalid schedule(when, options): options must be an object');
    }
  });
});

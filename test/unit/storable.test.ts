/**
 * core/store/storable.ts: error records every database can store (NUL made visible, long text
 * cut), driver messages short enough to log, and success statements of bounded size.
 */
import { expect } from 'chai';
import knexFactory from 'knex';
import { driverMessage, NUL_SHOWN_AS, planSuccessStatements, storableRecord } from '../../core/store/storable.js';
import { sqliteDialect } from '../../core/store/dialects/sqlite.js';
import type { ErrorRecord } from '../../core/types.js';

const record = (over: Partial<ErrorRecord> = {}): ErrorRecord => ({ class: 'Error', message: 'm', stack: 'Error: m', attempt: 1, at: 0, workerId: 'w', ...over });

describe('storableRecord', () => {
  it('writes each NUL of the class, message and stack as the six characters \\u0000', () => {
    const r = storableRecord(record({ class: 'A\u0000B', message: 'x\u0000y\u0000', stack: 'A\u0000B: x\u0000y' }));
    expect(NUL_SHOWN_AS).to.equal('\\u0000');
    expect([r.class, r.message, r.stack]).to.deep.equal(['A\\u0000B', 'x\\u0000y\\u0000', 'A\\u0000B: x\\u0000y']);
  });

  it('cuts a message over 16,000 characters and says how long it was; keeps the other fields', () => {
    const r = storableRecord(record({ message: 'z'.repeat(20_000) }));
    expect(r.message).to.equal(`${'z'.repeat(16_000)}\n… (truncated from 20000 characters)`);
    expect([r.attempt, r.at, r.workerId]).to.deep.equal([1, 0, 'w']);
  });

  it('returns plain records unchanged', () => {
    expect(storableRecord(record())).to.deep.equal(record());
  });
});

describe('driverMessage', () => {
  it('keeps the start and the end (the driver’s reason) of knex’s statement-plus-reason message', () => {
    const err = new Error(`insert into t values ('${'x'.repeat(10_000)}') - read ECONNRESET`);
    const m = driverMessage(err);
    expect(m.length).to.be.below(410);
    expect(m).to.match(/^insert into t values \('x+ … x+'\) - read ECONNRESET$/);
  });

  it('prefers MySQL’s own sqlMessage, and falls back to the code', () => {
    expect(driverMessage(Object.assign(new Error('long sql - CONSTRAINT failed'), { sqlMessage: 'CONSTRAINT failed' }))).to.equal('CONSTRAINT failed');
    expect(driverMessage(Object.assign(new Error(''), { code: 'ECONNRESET' }))).to.equal('ECONNRESET');
  });
});

describe('planSuccessStatements', () => {
  const knex = knexFactory({ client: 'sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
  after(() => knex.destroy());
  const success = (chars: number, successorAt: number | null = null) => ({ returnValue: chars === 0 ? null : 'x'.repeat(chars), successorAt });

  it('puts up to 1,000 small successes in one statement, plain ones before those with a successor', async () => {
    const items = [...Array.from({ length: 1500 }, () => success(10)), success(10, 5), success(0)];
    const { statements, refused } = await planSuccessStatements(items, sqliteDialect, knex);
    expect(refused).to.deep.equal([]);
    expect(statements.map((s) => s.length)).to.deep.equal([1000, 501, 1]);
    expect(statements[2]![0]!.successorAt).to.equal(5);
  });

  it('bounds the bytes of a statement (4 bytes per character at most, 4 MiB): large results go in several, one too large alone', async () => {
    const mib = 1024 * 1024;
    const items = [success(mib / 2), success(mib / 2), success(mib / 2), success(3 * mib), success(10)];
    const { statements } = await planSuccessStatements(items, sqliteDialect, knex);
    expect(statements.map((s) => s.map((c) => c.returnValue!.length))).to.deep.equal([[mib / 2], [mib / 2], [mib / 2], [3 * mib], [10]]);
  });
});

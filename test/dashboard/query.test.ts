/**
 * core/dashboard/query.ts: the Tasks page's parameters become a TaskFilter/TaskSort, and a bad
 * value is a ValidationError that names the value and what was expected.
 */
import { expect } from 'chai';
import { ValidationError } from '../../core/errors.js';
import { describeFilter, filterParams, narrowForAction, parseFilter, parseTaskQuery, parseTime, queryParams } from '../../core/dashboard/query.js';

const q = (s: string) => new URLSearchParams(s);

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('dashboard task query', () => {
  it('has defaults: no filter, newest enqueued first, 50 rows, first page', () => {
    expect(parseTaskQuery(q(''))).to.deep.equal({ filter: {}, sort: { key: 'enqueuedAt', direction: 'desc' }, limit: 50, cursor: null });
  });

  it('reads statuses in any case, repeated or comma-separated', () => {
    expect(parseFilter(q('status=ready,FAILED&status=Running')).statuses).to.deep.equal(['READY', 'FAILED', 'RUNNING']);
  });

  it('rejects an unknown status by name', () => {
    expect(messageOf(() => parseFilter(q('status=done')))).to.equal("unknown status 'done': expected ready, running, successful or failed");
  });

  it('reads - as "no queue", and lists of queues and names', () => {
    const f = parseFilter(q('queue=mail,-&name=a&name=b'));
    expect(f.queues).to.deep.equal(['mail', null]);
    expect(f.names).to.deep.equal(['a', 'b']);
  });

  it('reads a time without a zone as UTC and rejects malformed or impossible dates', () => {
    expect(parseTime('from', '2030-01-02T03:04').toISOString()).to.equal('2030-01-02T03:04:00.000Z');
    expect(parseTime('from', '2030-01-02').toISOString()).to.equal('2030-01-02T00:00:00.000Z');
    expect(parseTime('to', '2030-01-02T03:04:05+02:00').toISOString()).to.equal('2030-01-02T01:04:05.000Z');
    expect(messageOf(() => parseTime('from', 'yesterday'))).to.match(/^from is not a time: 'yesterday' \(expected ISO 8601/);
    expect(messageOf(() => parseTime('from', '2030-02-31'))).to.equal("from is not a valid date: '2030-02-31'");
    expect(messageOf(() => parseTime('to', '2030-01-01T25:00'))).to.equal("to is not a valid date: '2030-01-01T25:00'");
  });

  it('builds a range on the chosen time field and refuses from after to', () => {
    expect(parseFilter(q('time=finishedAt&from=2030-01-01')).range).to.deep.equal({ field: 'finishedAt', from: new Date('2030-01-01T00:00Z') });
    expect(messageOf(() => parseFilter(q('from=2030-01-02&to=2030-01-01')))).to.match(/^from \(2030-01-02T00:00:00.000Z\) is after to/);
    expect(messageOf(() => parseFilter(q('time=createdAt&from=2030-01-01')))).to.match(/^unknown time field 'createdAt'/);
  });

  it('bounds the page size', () => {
    expect(parseTaskQuery(q('limit=500')).limit).to.equal(500);
    expect(messageOf(() => parseTaskQuery(q('limit=-1')))).to.equal("limit must be a whole number from 1 to 500, not '-1'");
    expect(messageOf(() => parseTaskQuery(q('limit=0')))).to.equal('limit must be from 1 to 500, not 0');
    expect(messageOf(() => parseTaskQuery(q('limit=100000')))).to.equal('limit must be from 1 to 500, not 100000');
    expect(messageOf(() => parseTaskQuery(q('limit=1e9')))).to.match(/^limit must be a whole number/);
  });

  it('refuses a cursor that is not URL-safe text or is too long, before the source sees it', () => {
    expect(parseTaskQuery(q('cursor=abc-_.~:=')).cursor).to.equal('abc-_.~:=');
    expect(messageOf(() => parseTaskQuery(q('cursor=%3Cscript%3E')))).to.match(/^bad cursor/);
    expect(messageOf(() => parseTaskQuery(q(`cursor=${'a'.repeat(513)}`)))).to.match(/^bad cursor/);
  });

  it('refuses unknown sorts and directions and overlong text', () => {
    expect(messageOf(() => parseTaskQuery(q('sort=name')))).to.match(/^unknown sort 'name': expected enqueuedAt, runAt, finishedAt, priority$/);
    expect(messageOf(() => parseTaskQuery(q('dir=up')))).to.equal("unknown sort direction 'up': expected asc or desc");
    expect(messageOf(() => parseFilter(q(`q=${'x'.repeat(201)}`)))).to.equal('q too long: 201 characters (at most 200)');
  });

  it('writes a query back to parameters that parse to the same query, leaving defaults out', () => {
    const query = parseTaskQuery(q('status=failed&queue=-,mail&name=a&q=x%20y&error=TypeError&time=runAt&from=2030-01-01&sort=priority&dir=asc&limit=25&cursor=abc'));
    const again = parseTaskQuery(queryParams(query));
    expect(again).to.deep.equal(query);
    expect(queryParams(parseTaskQuery(q(''))).toString()).to.equal('');
    expect(filterParams({ statuses: ['FAILED'] }).toString()).to.equal('status=failed');
  });

  it('narrows an action on a filter to the statuses the action applies to', () => {
    expect(narrowForAction('retry', {})).to.deep.equal({ statuses: ['FAILED'] });
    expect(narrowForAction('delete', { statuses: ['RUNNING', 'READY'], names: ['a'] })).to.deep.equal({ statuses: ['READY'], names: ['a'] });
    expect(narrowForAction('runNow', { statuses: ['FAILED'] })).to.equal(null);
    expect(narrowForAction('cancel', {})?.statuses).to.deep.equal(['READY', 'RUNNING']);
  });

  it('says a filter in words for the confirmation', () => {
    expect(describeFilter({ statuses: ['FAILED'], names: ['sendEmail'], queues: [null] })).to.equal('status failed; queue - (none); name sendEmail');
    expect(describeFilter({})).to.equal('every task');
  });
});

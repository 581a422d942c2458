/** core/policy/flow.ts: which limits bind a task, admission under limits, keys taking turns, rate windows, validation. */
import { expect } from 'chai';
import { admit, checkConcurrencyKey, checkLimitCount, checkRateLimit, flowTime, limitersFor, parseRateLimit, rateWindow, takeTurns, type FlowCandidate } from '../../core/policy/flow.js';
import { ValidationError } from '../../core/errors.js';

const task = (id: string, key: string | null = null, name = 'sync', queue: string | null = 'q'): FlowCandidate => ({ id, name, queue, key });

describe('policy/flow', () => {
  describe('limitersFor', () => {
    it('lists the queue, task and key limits that bind a task, with ids naming scope and kind', () => {
      const ls = limitersFor(
        { name: 'sync', queue: 'mail', key: 'user:7' },
        { concurrency: 3, rateLimit: { limit: 10, period: 2, perKey: true }, concurrencyLimit: 2 },
        { paused: false, concurrency: 5, rateLimit: { limit: 50, period: 1 } },
      );
      expect(ls.map((l) => [l.id, l.limit, l.periodMs ?? null])).to.deep.equal([
        ['queue mail#concurrency', 5, null],
        ['queue mail#rate', 50, 1000],
        ['task sync#concurrency', 3, null],
        ['task sync key user:7#rate', 10, 2000],
        ['task sync key user:7#concurrency', 2, null],
      ]);
    });

    it('gives a keyed task a key limit of 1 by default, and an unkeyed task without limits none', () => {
      expect(limitersFor({ name: 'a', queue: null, key: 'k' }, undefined, undefined).map((l) => [l.id, l.limit])).to.deep.equal([['task a key k#concurrency', 1]]);
      expect(limitersFor({ name: 'a', queue: 'mail', key: null }, {}, { paused: true, concurrency: null, rateLimit: null })).to.deep.equal([]);
    });
  });

  describe('admit', () => {
    it('admits in order while every limiter has room, and names the full one for each task held back', () => {
      const ls = (t: FlowCandidate) => limitersFor(t, { concurrencyLimit: 1, concurrency: 3 }, undefined);
      const usage = new Map([['task sync key a#concurrency', 1]]);
      const r = admit([task('1', 'a'), task('2', 'b'), task('3', 'b'), task('4', 'c'), task('5', 'd')], ls, usage, 10);
      expect(r.admitted.map((t) => t.id)).to.deep.equal(['2', '4', '5']);
      expect(r.held.map((h) => [h.task.id, h.by.id])).to.deep.equal([
        ['1', 'task sync key a#concurrency'],
        ['3', 'task sync key b#concurrency'],
      ]);
      expect(usage.get('task sync key a#concurrency')).to.equal(1);
    });

    it('counts a task against every limiter it has, and stops at max', () => {
      const ls = (t: FlowCandidate) => limitersFor(t, { concurrency: 2 }, undefined);
      expect(admit([task('1'), task('2'), task('3')], ls, new Map(), 10).admitted.map((t) => t.id)).to.deep.equal(['1', '2']);
      expect(admit([task('1', 'a'), task('2', 'b')], () => [], new Map(), 1).admitted.map((t) => t.id)).to.deep.equal(['1']);
    });
  });

  describe('takeTurns', () => {
    it('serves keys round by round, so a large backlog gets one turn per round like a small one', () => {
      const a = Array.from({ length: 6 }, (_, i) => task(`a${i}`, 'A'));
      const b = [task('b0', 'B'), task('b1', 'B')];
      const { order, cursor } = takeTurns([...a, ...b], null);
      expect(order.map((t) => t.id)).to.deep.equal(['a0', 'b0', 'a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
      expect(cursor).to.equal('B');
    });

    it('starts after the cursor (wrapping) and treats tasks without a key as one more participant', () => {
      const ts = [task('n0', null), task('a0', 'A'), task('b0', 'B'), task('c0', 'C')];
      expect(takeTurns(ts, 'A').order.map((t) => t.id)).to.deep.equal(['b0', 'c0', 'n0', 'a0']);
      expect(takeTurns(ts, 'Z').order.map((t) => t.id)).to.deep.equal(['n0', 'a0', 'b0', 'c0']);
      expect(takeTurns([], 'A')).to.deep.equal({ order: [], cursor: 'A' });
    });
  });

  describe('flowTime', () => {
    it('is the later of the worker\'s clock and the latest flow time, so it never goes back', () => {
      expect(flowTime(5000, null)).to.equal(5000);
      expect(flowTime(5000, 4000)).to.equal(5000);
      expect(flowTime(5000, 5600)).to.equal(5600);
      expect(flowTime(5000, 10_000)).to.equal(10_000);
    });

    it('does not follow a latest time more than 5 s ahead of the worker\'s clock (a wrong or simulated clock wrote it)', () => {
      expect(flowTime(5000, 10_001)).to.equal(5000);
      expect(flowTime(Date.UTC(2026, 0, 1), Date.UTC(2031, 6, 1))).to.equal(Date.UTC(2026, 0, 1));
    });
  });

  describe('rateWindow', () => {
    it('counts only starts inside the window and says when a place frees', () => {
      expect(rateWindow([100, 900, 1500], 3, 1000, 2000)).to.deep.equal({ room: 2, reopensAt: null });
      expect(rateWindow([1200, 1500, 1900, 1100], 3, 1000, 2000)).to.deep.equal({ room: 0, reopensAt: 2200 });
      expect(rateWindow([1200, 1500, 1900], 3, 1000, 2000)).to.deep.equal({ room: 0, reopensAt: 2200 });
      expect(rateWindow([], 1, 1000, 0)).to.deep.equal({ room: 1, reopensAt: null });
    });
  });

  describe('validation', () => {
    const refused = (fn: () => unknown, re: RegExp) => {
      expect(fn).to.throw(ValidationError, re);
    };
    it('refuses limits that are zero, negative, fractional or not numbers, naming the value', () => {
      for (const v of [0, -1, 1.5, '3', NaN, Infinity, null]) refused(() => checkLimitCount(v, 'concurrency'), /Invalid concurrency: .* — expected a whole number of tasks >= 1/);
      expect(checkLimitCount(4, 'x')).to.equal(4);
    });

    it('refuses rate limits with a bad limit, a period of 0, unknown fields or a non-object', () => {
      refused(() => checkRateLimit({ limit: 5, period: 0 }, 'rateLimit'), /Invalid rateLimit.period: 0/);
      refused(() => checkRateLimit({ limit: 0, period: 1 }, 'rateLimit'), /Invalid rateLimit.limit: 0/);
      refused(() => checkRateLimit({ limit: 1, period: 1, burst: 2 }, 'rateLimit'), /unknown field "burst"/);
      refused(() => checkRateLimit(5, 'rateLimit'), /expected \{ limit, period \}/);
      refused(() => checkRateLimit({ limit: 1, period: 1, perKey: 'yes' }, 'rateLimit'), /perKey: "yes"/);
      expect(checkRateLimit({ limit: 50, period: 2 }, 'r')).to.deep.equal({ limit: 50, period: 2 });
    });

    it('refuses keys that are not strings of 1 to 190 characters', () => {
      for (const v of ['', 'x'.repeat(191), 7, null, 'a\u0000b']) refused(() => checkConcurrencyKey(v, 'concurrencyKey'), /Invalid concurrencyKey/);
    });

    it('reads LIMIT/SECONDS from the command line', () => {
      expect(parseRateLimit('50/2', '--rate')).to.deep.equal({ limit: 50, period: 2 });
      expect(parseRateLimit('100/1m', '--rate')).to.deep.equal({ limit: 100, period: 60 });
      refused(() => parseRateLimit('50', '--rate'), /Invalid --rate: "50" — expected LIMIT\/SECONDS/);
      // Named as typed: the text, not the fields of the object it makes.
      refused(() => parseRateLimit('0/2', '--rate'), /^Invalid --rate: "0\/2" — expected LIMIT\/SECONDS with LIMIT a whole number >= 1 and SECONDS > 0/);
      refused(() => parseRateLimit('1/400d', '--rate'), /^Invalid --rate: "1\/400d" — expected LIMIT\/SECONDS/);
      refused(() => parseRateLimit('1/9999999999', '--rate'), /^Invalid --rate: "1\/9999999999" — expected .*\(at most a year\)/);
    });
  });
});

/** core/policy/backoff.ts: `attempts ** 4 + 5` seconds, as django-background-tasks. */
import { expect } from 'chai';
import { backoffSeconds } from '../../core/policy/backoff.js';

describe('backoffSeconds', () => {
  const table: Array<[number, number]> = [
    [1, 6],
    [2, 21],
    [3, 86],
    [4, 261],
    [5, 630],
    [10, 10005],
  ];
  for (const [attempts, seconds] of table) {
    it(`waits ${seconds} s after attempt ${attempts}`, () => {
      expect(backoffSeconds(attempts)).to.equal(seconds);
    });
  }
});

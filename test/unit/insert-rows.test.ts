/** Uniform rows for multi-row inserts, and the split of a chunk into shared and per-row values. */
import { expect } from 'chai';
import { splitChunk, uniformRows } from '../../core/store/dialects/insert-rows.js';

describe('uniformRows', () => {
  it('takes every column some row sets, filling the others with the column default', () => {
    const u = uniformRows([{ name: 'a', priority: 3 }, { name: 'b', queue: 'q' }]);
    expect(u.columns).to.deep.equal(['name', 'priority', 'queue']);
    expect(u.values).to.deep.equal([['a', 3, null], ['b', 0, 'q']]);
  });
});

describe('splitChunk', () => {
  it('binds values shared by every row once and sends only the varying ones per row', () => {
    const s = splitChunk(['name', 'args', 'hash', 'run_at'], [
      ['t', '[1]', 'h1', 5],
      ['t', '[2]', 'h2', 5],
    ]);
    expect(s.sources).to.deep.equal([{ constant: 't' }, { at: 0 }, { at: 1 }, { constant: 5 }]);
    expect(s.constants).to.deep.equal(['t', 5]);
    expect(s.perRow).to.deep.equal([['[1]', 'h1'], ['[2]', 'h2']]);
  });

  it('keeps one (empty) entry per row when nothing varies, and treats one row as all constant', () => {
    expect(splitChunk(['a', 'b'], [[1, null], [1, null], [1, null]]).perRow).to.deep.equal([[], [], []]);
    const one = splitChunk(['a', 'b'], [[false, 'x']]);
    expect(one.constants).to.deep.equal([false, 'x']);
    expect(one.perRow).to.deep.equal([[]]);
  });

  it('compares values exactly: 0 and false, null and undefined differ', () => {
    const s = splitChunk(['a', 'b'], [[0, null], [false, undefined]]);
    expect(s.sources).to.deep.equal([{ at: 0 }, { at: 1 }]);
  });
});

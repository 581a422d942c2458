/**
 * core/worker/prefetch.ts: the prefetch buffer keeps claim order when a claim brings a task that
 * outranks those already held, gives back its lowest-ranked tasks when outranking ones are added,
 * and says when it was last refreshed too long ago.
 */
import { expect } from 'chai';
import { PrefetchBuffer } from '../../core/worker/prefetch.js';
import { claimOrder } from '../../core/store/store.js';
import type { TaskRow } from '../../core/types.js';

const row = (id: number, priority: number, runAt = 0): TaskRow => ({ id: String(id), priority, runAt }) as TaskRow;
const ids = (b: PrefetchBuffer) => b.toArray().map((t) => t.id);

describe('PrefetchBuffer', () => {
  it('appends a claim that ranks at or below the buffered tasks, without reordering', () => {
    const b = new PrefetchBuffer(claimOrder('DESC'), 100);
    b.add([row(1, 5), row(2, 5)]);
    b.add([row(3, 5), row(4, 0)]);
    expect(ids(b)).to.deep.equal(['1', '2', '3', '4']);
  });

  it('merges a claimed task that outranks buffered ones at its rank (DESC and ASC)', () => {
    const desc = new PrefetchBuffer(claimOrder('DESC'), 100);
    desc.add([row(1, 5), row(2, 0), row(3, 0)]);
    desc.add([row(9, 7), row(8, 1)]);
    expect(ids(desc)).to.deep.equal(['9', '1', '8', '2', '3']);
    const asc = new PrefetchBuffer(claimOrder('ASC'), 100);
    asc.add([row(1, 0), row(2, 5)]);
    asc.add([row(9, -3)]);
    expect(ids(asc)).to.deep.equal(['9', '1', '2']);
  });

  it('remove() takes out the task of a claim token and returns it, keeping the order of the rest', () => {
    const b = new PrefetchBuffer(claimOrder('DESC'), 100);
    b.add([1, 2, 3].map((n) => ({ ...row(n, 0), claimToken: `t${n}` })));
    expect(b.remove('t2')?.id).to.equal('2');
    expect(b.remove('t2')).to.equal(undefined);
    expect(ids(b)).to.deep.equal(['1', '3']);
  });

  it('displace() adds outranking tasks and returns as many of the lowest-ranked to give back', () => {
    const b = new PrefetchBuffer(claimOrder('DESC'), 100);
    b.add([row(1, 3), row(2, 0, 10), row(3, 0, 20)]);
    const surplus = b.displace([row(9, 10), row(8, 4)]);
    expect(ids(b)).to.deep.equal(['9', '8', '1']);
    expect(surplus.map((t) => t.id)).to.deep.equal(['2', '3']);
  });

  it('is stale once the recheck interval has passed since the last claim or look', () => {
    let now = 1000;
    const b = new PrefetchBuffer(claimOrder('DESC'), 20, () => now);
    b.add([row(1, 0)]);
    now += 20;
    expect(b.stale()).to.equal(false);
    now += 1;
    expect(b.stale()).to.equal(true);
    b.touch();
    expect(b.stale()).to.equal(false);
    now += 21;
    b.add([]);
    expect(b.stale()).to.equal(false);
  });
});

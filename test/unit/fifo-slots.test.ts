/**
 * The worker's prefetch buffer and result queue (Fifo) and its running attempts (Slots): order,
 * and that nothing they have let go of is still referenced by them (the reason they exist).
 */
import { expect } from 'chai';
import { Fifo } from '../../core/worker/fifo.js';
import { Slots } from '../../core/worker/slots.js';
import { AttemptControl } from '../../core/definition/attempt-control.js';
import type { TaskRow } from '../../core/types.js';

/** The backing ring, read for the reference checks only. */
const ringOf = <T>(f: Fifo<T>): Array<T | undefined> => (f as unknown as { ring: Array<T | undefined> }).ring;
/** How many entries of the ring hold an item: must always equal the queue's length. */
const held = <T>(f: Fifo<T>): number => ringOf(f).filter((x) => x !== undefined).length;

describe('Fifo', () => {
  it('keeps first-in, first-out order across wrap-around and growth', () => {
    const f = new Fifo<number>(4);
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < (round % 7) + 1; i++) f.push(next++);
      for (let i = 0; i < (round % 5) + 1 && f.length > 0; i++) out.push(f.shift()!);
    }
    out.push(...f.take(f.length));
    expect(out).to.deep.equal([...Array(next).keys()]);
    expect(f.length).to.equal(0);
    expect(f.shift()).to.equal(undefined);
  });

  it('pushAll, take, at, find, filter and toArray see the queue in order', () => {
    const f = new Fifo<string>(2);
    f.pushAll(['a', 'b', 'c', 'd', 'e']);
    expect(f.length).to.equal(5);
    expect(f.at(0)).to.equal('a');
    expect(f.at(4)).to.equal('e');
    expect(f.at(5)).to.equal(undefined);
    expect(f.at(-1)).to.equal(undefined);
    expect(f.take(2)).to.deep.equal(['a', 'b']);
    expect(f.find((x) => x > 'c')).to.equal('d');
    expect(f.find((x) => x > 'z')).to.equal(undefined);
    f.filter((x) => x !== 'd');
    expect(f.toArray()).to.deep.equal(['c', 'e']);
    expect(f.take(10)).to.deep.equal(['c', 'e']);
  });

  it('unshiftAll puts items back at the front in their order', () => {
    const f = new Fifo<number>(4);
    f.pushAll([5, 6]);
    f.shift();
    f.unshiftAll([1, 2, 3, 4, 5]);
    expect(f.toArray()).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(held(f)).to.equal(6);
  });

  it('holds a reference only to the items still queued', () => {
    const f = new Fifo<object>(4);
    for (let i = 0; i < 10; i++) f.push({ i });
    expect(held(f)).to.equal(10);
    f.shift();
    f.take(3);
    expect(held(f)).to.equal(6);
    f.filter((o) => (o as { i: number }).i % 2 === 0);
    expect(held(f)).to.equal(f.length);
    f.take(f.length);
    expect(held(f)).to.equal(0);
  });

  it('clears the ring it replaces when it grows', () => {
    const f = new Fifo<object>(2);
    f.push({});
    f.push({});
    const before = ringOf(f);
    f.push({});
    expect(ringOf(f)).to.not.equal(before);
    expect(before.every((x) => x === undefined)).to.equal(true);
    expect(held(f)).to.equal(3);
  });
});

describe('Slots', () => {
  const task = (token: string): TaskRow => ({ id: token, claimToken: token, name: 't' }) as TaskRow;

  it('adds, finds by claim token and removes entries, reusing freed ones', () => {
    const s = new Slots(2);
    const a = s.add({ task: task('x:1'), stop: new AttemptControl() });
    const b = s.add({ task: task('x:2'), stop: new AttemptControl() });
    expect(s.size).to.equal(2);
    expect(s.get('x:2')!.task.id).to.equal('x:2');
    expect(s.get('x:3')).to.equal(undefined);
    s.remove(a);
    s.remove(a); // a second remove of the same entry changes nothing
    expect(s.size).to.equal(1);
    expect(s.get('x:1')).to.equal(undefined);
    const c = s.add({ task: task('x:3'), stop: new AttemptControl() });
    expect(c).to.equal(a);
    expect(s.values().map((v) => v.task.id).sort()).to.deep.equal(['x:2', 'x:3']);
    s.remove(b);
    s.remove(c);
    expect(s.size).to.equal(0);
    expect(s.values()).to.deep.equal([]);
  });

  it('grows past its capacity and keeps every entry', () => {
    const s = new Slots(1);
    const idx = [1, 2, 3, 4, 5].map((i) => s.add({ task: task(`g:${i}`), stop: new AttemptControl() }));
    expect(new Set(idx).size).to.equal(5);
    expect(s.size).to.equal(5);
    for (const i of [1, 2, 3, 4, 5]) expect(s.get(`g:${i}`)!.task.id).to.equal(`g:${i}`);
    idx.forEach((i) => s.remove(i));
    expect(s.size).to.equal(0);
  });

  it('holds no reference to an attempt once it is removed', () => {
    const s = new Slots(4);
    const i = s.add({ task: task('r:1'), stop: new AttemptControl() });
    s.remove(i);
    const entries = (s as unknown as { entries: unknown[] }).entries;
    expect(entries.every((e) => e === null)).to.equal(true);
  });
});

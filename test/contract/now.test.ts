/**
 * `.now()` on every database: the function runs inline, its result (or its error) comes straight
 * back, and nothing is stored.
 */
import { expect } from 'chai';
import { background } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { countRows } from '../helpers/stored-rows.js';

const ran: string[] = [];

class InlineBoom extends Error {}

const inlineAdd = background({ name: 'gaps.inlineAdd' }, function inlineAdd(a: number, b: number) {
  ran.push(`inlineAdd:${a}+${b}`);
  return a + b;
});
const inlineUpper = background({ name: 'gaps.inlineUpper' }, async function inlineUpper(s: string) {
  ran.push(`inlineUpper:${s}`);
  return s.toUpperCase();
});
const inlineThrows = background({ name: 'gaps.inlineThrows' }, function inlineThrows(tag: string): never {
  ran.push(`inlineThrows:${tag}`);
  throw new InlineBoom(`sync ${tag}`);
});
const inlineRejects = background({ name: 'gaps.inlineRejects' }, async function inlineRejects(tag: string): Promise<never> {
  ran.push(`inlineRejects:${tag}`);
  throw new InlineBoom(`async ${tag}`);
});

const T0 = Date.UTC(2032, 3, 1, 9);

contract('.now()', (db) => {
  manualClockSuite(db, T0, () => {
    ran.length = 0;
  });
  const count = (table: string) => countRows(db, table);

  it('runs the function inline and returns its result (a promise for an async function), storing nothing', async () => {
    const sum = inlineAdd.now(2, 3);
    expect(sum).to.equal(5);
    const upper = inlineUpper.now('abc');
    expect(upper).to.be.instanceOf(Promise);
    expect(await upper).to.equal('ABC');
    expect(ran).to.deep.equal(['inlineAdd:2+3', 'inlineUpper:abc']);
    expect(await count(db.store.tables.tasks)).to.equal(0);
    expect(await count(db.store.tables.completed)).to.equal(0);
  });

  it('lets an error thrown (or rejected) by the function propagate, storing nothing', async () => {
    expect(() => inlineThrows.now('a')).to.throw(InlineBoom, 'sync a');
    let rejected: unknown;
    await inlineRejects.now('b').catch((err: unknown) => (rejected = err));
    expect(rejected).to.be.instanceOf(InlineBoom);
    expect((rejected as Error).message).to.equal('async b');
    expect(ran).to.deep.equal(['inlineThrows:a', 'inlineRejects:b']);
    expect(await count(db.store.tables.tasks)).to.equal(0);
    expect(await count(db.store.tables.completed)).to.equal(0);
  });
});

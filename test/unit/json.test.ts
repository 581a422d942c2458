/**
 * core/base/json.ts: canonical JSON (sorted keys, compact), the errors that name the argument and the
 * path of the first value JSON cannot carry, and the dedupe hash.
 */
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { canonicalArgs, canonicalJson, plainJson, taskHash } from '../../core/base/json.js';
import { ValidationError } from '../../core/errors.js';

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to throw');
}

describe('canonicalJson', () => {
  it('sorts object keys at every depth and writes no spaces', () => {
    const text = canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } });
    expect(text).to.equal('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('gives equal text for objects whose keys were inserted in a different order', () => {
    expect(canonicalJson({ a: 1, b: 2, c: 3 })).to.equal(canonicalJson({ c: 3, a: 1, b: 2 }));
  });

  it('keeps array order', () => {
    expect(canonicalJson([3, 1, 2])).to.equal('[3,1,2]');
  });

  it('writes scalars as JSON does', () => {
    expect(canonicalJson('a "quoted"\nline')).to.equal(JSON.stringify('a "quoted"\nline'));
    expect(canonicalJson(1.5)).to.equal('1.5');
    expect(canonicalJson(true)).to.equal('true');
    expect(canonicalJson(false)).to.equal('false');
    expect(canonicalJson(null)).to.equal('null');
    expect(canonicalJson([])).to.equal('[]');
    expect(canonicalJson({})).to.equal('{}');
  });

  it('writes -0 as 0, so it hashes like 0', () => {
    expect(canonicalJson(-0)).to.equal('0');
    expect(canonicalJson({ n: -0 })).to.equal(canonicalJson({ n: 0 }));
  });

  it('round-trips: the text parses back to an equal value', () => {
    const value = { name: 'Zoë', tags: ['a', 'b'], nested: { n: 1e-7, ok: null } };
    expect(JSON.parse(canonicalJson(value))).to.deep.equal(value);
  });

  it('accepts objects without a prototype', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.b = 2;
    o.a = 1;
    expect(canonicalJson(o)).to.equal('{"a":1,"b":2}');
  });

  it('accepts the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: [shared, shared] })).to.equal('{"a":{"x":1},"b":[{"x":1},{"x":1}]}');
  });

  it('names the root and the path of a Date, with a hint', () => {
    const err = errorOf(() => canonicalJson({ user: { createdAt: new Date(0) } }, 'argument 1'));
    expect(err).to.be.instanceOf(ValidationError);
    expect(err.message).to.match(/^argument 1 \.user\.createdAt: Date is not JSON — pass an ISO string/);
  });

  it('uses "value" as the default root', () => {
    expect(errorOf(() => canonicalJson(new Date(0))).message).to.match(/^value: Date is not JSON/);
  });

  it('rejects Map and Set with their own hints', () => {
    expect(errorOf(() => canonicalJson({ m: new Map() })).message).to.equal(
      'value .m: Map is not JSON — pass an object or an array of [key, value] pairs',
    );
    expect(errorOf(() => canonicalJson([new Set([1])])).message).to.equal('value [0]: Set is not JSON — pass an array');
  });

  it('rejects class instances, naming the class', () => {
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    const err = errorOf(() => canonicalJson({ p: new Point(1, 2) }, 'argument 2'));
    expect(err).to.be.instanceOf(ValidationError);
    expect(err.message).to.equal('argument 2 .p: an instance of Point is not JSON — pass a plain object (its fields) instead');
  });

  it('rejects boxed primitives and typed arrays as class instances', () => {
    expect(errorOf(() => canonicalJson(new String('x'))).message).to.match(/^value: an instance of String is not JSON/);
    expect(errorOf(() => canonicalJson(new Uint8Array(2))).message).to.match(/^value: an instance of Uint8Array is not JSON/);
  });

  it('rejects bigint, functions and symbols', () => {
    expect(errorOf(() => canonicalJson({ n: 10n })).message).to.equal('value .n: bigint is not JSON — pass a string or a number');
    expect(errorOf(() => canonicalJson({ f: () => 1 })).message).to.equal('value .f: function is not JSON — pass data, not code');
    expect(errorOf(() => canonicalJson({ s: Symbol('x') })).message).to.equal('value .s: symbol is not JSON — pass a string');
  });

  it('rejects symbol keys', () => {
    const err = errorOf(() => canonicalJson({ a: { [Symbol('k')]: 1 } }));
    expect(err).to.be.instanceOf(ValidationError);
    expect(err.message).to.equal('value .a: symbol is not JSON — pass a string');
  });

  it('rejects NaN, Infinity and -Infinity', () => {
    expect(errorOf(() => canonicalJson([1, NaN])).message).to.equal('value [1]: NaN is not JSON — pass null or a finite number');
    expect(errorOf(() => canonicalJson({ x: Infinity })).message).to.equal('value .x: Infinity is not JSON — pass null or a finite number');
    expect(errorOf(() => canonicalJson({ x: -Infinity })).message).to.equal('value .x: -Infinity is not JSON — pass null or a finite number');
  });

  it('rejects undefined values instead of dropping them silently', () => {
    expect(errorOf(() => canonicalJson({ a: 1, b: undefined })).message).to.equal('value .b: undefined is not JSON — omit it or pass null');
    expect(errorOf(() => canonicalJson([undefined])).message).to.equal('value [0]: undefined is not JSON — omit it or pass null');
  });

  it('rejects holes in sparse arrays, naming the index', () => {
    // eslint-disable-next-line no-sparse-arrays
    const sparse = [1, , 3];
    const err = errorOf(() => canonicalJson({ list: sparse }, 'argument 1'));
    expect(err).to.be.instanceOf(ValidationError);
    expect(err.message).to.equal('argument 1 .list[1]: undefined is not JSON — omit it or pass null');
    expect(errorOf(() => canonicalJson(new Array(2))).message).to.match(/^value \[0\]: undefined is not JSON/);
  });

  it('rejects cycles, naming where the value refers back', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    expect(errorOf(() => canonicalJson({ root: a })).message).to.equal('value .root.self: a cycle is not JSON — the value refers to itself');
    const arr: unknown[] = [];
    arr.push(arr);
    expect(errorOf(() => canonicalJson(arr)).message).to.equal('value [0]: a cycle is not JSON — the value refers to itself');
  });

  it('quotes keys that are not identifiers in the path', () => {
    const err = errorOf(() => canonicalJson({ 'first name': { 'x-y': undefined } }));
    expect(err.message).to.match(/^value \["first name"\]\["x-y"\]: undefined is not JSON/);
  });
});

describe('plainJson', () => {
  it('keeps object keys in their own order, and refuses what canonicalJson refuses', () => {
    expect(plainJson({ userId: 42, sentTo: 'a@b.c', nested: { z: 1, a: [1, { y: 2, b: 3 }] } })).to.equal(
      '{"userId":42,"sentTo":"a@b.c","nested":{"z":1,"a":[1,{"y":2,"b":3}]}}',
    );
    expect(errorOf(() => plainJson({ at: new Date(0) }, 'return value')).message).to.match(/^return value \.at: Date is not JSON/);
  });
});

describe('canonicalArgs', () => {
  it('writes the arguments as one canonical JSON array', () => {
    expect(canonicalArgs([])).to.equal('[]');
    expect(canonicalArgs([1, 'a', { b: 1, a: [true, null] }])).to.equal('[1,"a",{"a":[true,null],"b":1}]');
  });

  it('names the 1-based argument that is not JSON', () => {
    const err = errorOf(() => canonicalArgs(['ok', { user: { createdAt: new Date(0) } }]));
    expect(err).to.be.instanceOf(ValidationError);
    expect(err.message).to.match(/^argument 2 \.user\.createdAt: Date is not JSON — pass an ISO string/);
  });

  it('rejects an undefined argument, naming it', () => {
    expect(errorOf(() => canonicalArgs([1, undefined])).message).to.equal('argument 2: undefined is not JSON — omit it or pass null');
  });

  it('writes flat arguments (strings, finite numbers, booleans, null) exactly as the general walker does', () => {
    const cases: unknown[][] = [[0], [-0, 1.5, -2e-7, 1e21], ['', 'é\u2028"\\\n', '\ud800'], [true, false, null], [Number.MAX_SAFE_INTEGER, 'x']];
    for (const args of cases) {
      expect(canonicalArgs(args)).to.equal(`[${args.map((a, i) => canonicalJson(a, `argument ${i + 1}`)).join(',')}]`);
    }
  });

  it('still refuses non-finite numbers and holes among flat arguments', () => {
    expect(errorOf(() => canonicalArgs([1, NaN])).message).to.match(/^argument 2: NaN is not JSON/);
    expect(errorOf(() => canonicalArgs(['a', Infinity])).message).to.match(/^argument 2: Infinity is not JSON/);
    // eslint-disable-next-line no-sparse-arrays
    expect(errorOf(() => canonicalArgs([1, , 3])).message).to.match(/^argument 2: undefined is not JSON/);
  });
});

describe('taskHash', () => {
  it('is the sha1 (40 hex digits) of the name followed by the canonical arguments', () => {
    const h = taskHash('core.add', '[1,2]');
    expect(h).to.match(/^[0-9a-f]{40}$/);
    expect(h).to.equal(createHash('sha1').update('core.add[1,2]').digest('hex'));
    expect(h).to.equal('af2c4fe36f419f25578e22c081706e5579d2e66e');
  });

  it('differs by name and by arguments', () => {
    const base = taskHash('a', '[1]');
    expect(taskHash('b', '[1]')).to.not.equal(base);
    expect(taskHash('a', '[2]')).to.not.equal(base);
  });

  it('is equal for calls whose objects differ only in key order', () => {
    expect(taskHash('t', canonicalArgs([{ a: 1, b: 2 }]))).to.equal(taskHash('t', canonicalArgs([{ b: 2, a: 1 }])));
  });
});

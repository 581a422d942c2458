/**
 * Arguments and return values must survive a JSON round trip unchanged. `canonicalJson` checks that
 * and writes the canonical text (object keys sorted, no spaces) in one pass, so that equal calls
 * give equal text and therefore equal hashes.
 */
import crypto, { createHash } from 'node:crypto';
import { ValidationError } from '../errors.js';

const HINTS: Record<string, string> = {
  Date: 'pass an ISO string (date.toISOString())',
  Map: 'pass an object or an array of [key, value] pairs',
  Set: 'pass an array',
  bigint: 'pass a string or a number',
  undefined: 'omit it or pass null',
  function: 'pass data, not code',
  symbol: 'pass a string',
  NaN: 'pass null or a finite number',
  Infinity: 'pass null or a finite number',
  '-Infinity': 'pass null or a finite number',
  cycle: 'the value refers to itself',
};

function describePath(root: string, path: string): string {
  return path ? `${root} ${path}` : root;
}

function fail(root: string, path: string, what: string): never {
  const hint = HINTS[what] ?? 'pass plain objects, arrays, strings, finite numbers, booleans or null';
  const noun = what === 'cycle' ? 'a cycle' : what;
  throw new ValidationError(`${describePath(root, path)}: ${noun} is not JSON — ${hint}`);
}

function typeLabel(value: object): string {
  if (value instanceof Date) return 'Date';
  if (value instanceof Map) return 'Map';
  if (value instanceof Set) return 'Set';
  const ctor = (value as { constructor?: { name?: string } }).constructor;
  return ctor?.name ? `an instance of ${ctor.name}` : 'a non-plain object';
}

function keyPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * The canonical JSON text of `value`, or a ValidationError naming `root` and the path to the first
 * value that JSON cannot carry (e.g. `argument 1 .user.createdAt: Date is not JSON — …`).
 */
export function canonicalJson(value: unknown, root = 'value'): string {
  return checkedJson(value, root, true);
}

/**
 * The JSON text of `value`, refused like canonicalJson() refuses it, but with object keys in
 * their own order: what a task returns reads back as it was written (no hash depends on it).
 */
export function plainJson(value: unknown, root = 'value'): string {
  return checkedJson(value, root, false);
}

function checkedJson(value: unknown, root: string, sortKeys: boolean): string {
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): string => {
    switch (typeof v) {
      case 'string':
        return JSON.stringify(v);
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        if (Number.isFinite(v)) return JSON.stringify(v);
        return fail(root, path, Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');
      case 'undefined':
      case 'function':
      case 'symbol':
      case 'bigint':
        return fail(root, path, typeof v);
    }
    if (v === null) return 'null';
    const obj = v as object;
    if (seen.has(obj)) fail(root, path, 'cycle');
    seen.add(obj);
    let out: string;
    if (Array.isArray(obj)) {
      const parts: string[] = [];
      for (let i = 0; i < obj.length; i++) {
        if (!(i in obj)) fail(root, `${path}[${i}]`, 'undefined');
        parts.push(walk(obj[i], `${path}[${i}]`));
      }
      out = `[${parts.join(',')}]`;
    } else {
      const proto = Object.getPrototypeOf(obj);
      if (proto !== Object.prototype && proto !== null) {
        const label = typeLabel(obj);
        if (label === 'Date' || label === 'Map' || label === 'Set') fail(root, path, label);
        throw new ValidationError(
          `${describePath(root, path)}: ${label} is not JSON — pass a plain object (its fields) instead`,
        );
      }
      if (Object.getOwnPropertySymbols(obj).length > 0) fail(root, path, 'symbol');
      const keys = sortKeys ? Object.keys(obj).sort() : Object.keys(obj);
      const parts: string[] = [];
      for (const k of keys) parts.push(`${JSON.stringify(k)}:${walk((obj as Record<string, unknown>)[k], keyPath(path, k))}`);
      out = `{${parts.join(',')}}`;
    }
    seen.delete(obj);
    return out;
  };
  return walk(value, '');
}

/** The canonical JSON of a call's arguments; errors name the 1-based argument. */
export function canonicalArgs(args: readonly unknown[]): string {
  // Most calls pass ids, names and flags: for those JSON.stringify already writes the canonical
  // text (no keys to sort, nothing to refuse), without the walker's bookkeeping.
  let flat = true;
  for (let i = 0; i < args.length && flat; i++) {
    const a = args[i];
    const t = typeof a;
    flat = t === 'string' || t === 'boolean' || a === null || (t === 'number' && Number.isFinite(a));
  }
  if (flat) return JSON.stringify(args);
  // A plain loop, not map(): map skips the holes of a sparse array, which must be refused.
  const parts: string[] = [];
  for (let i = 0; i < args.length; i++) parts.push(canonicalJson(args[i], `argument ${i + 1}`));
  return `[${parts.join(',')}]`;
}

/** The dedupe hash of a task: sha1 of its name followed by its canonical arguments. */
export function taskHash(name: string, canonicalArgsText: string): string {
  // crypto.hash (Node >= 20.12) hashes in one call, without a Hash object per task.
  const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;
  return oneShot ? oneShot('sha1', name + canonicalArgsText, 'hex') : createHash('sha1').update(name).update(canonicalArgsText).digest('hex');
}

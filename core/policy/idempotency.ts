/**
 * Idempotency keys, as pure rules: what a key may be, and whether an enqueue that finds its key
 * already taken is the same call (it then gets the stored task) or another one (refused).
 *
 * A key names one enqueue, for as long as its task can be found: while it is pending (READY or
 * RUNNING) and, once finished, while its result is kept (until `prune-results` deletes it). An
 * application that does not know whether an enqueue was stored (its answer was lost to a timeout
 * or a cut connection) enqueues again with the same key: it gets the stored task if there is one,
 * and stores the call otherwise. Keys are shared by every task name of one database and table
 * prefix, so a key is best built from what it protects: `charge:order-42`.
 */
import { ValidationError } from '../errors.js';
import { checkNoNul } from './options.js';

/** Characters a key may have: the column is VARCHAR(190), and JavaScript counts no fewer. */
export const IDEMPOTENCY_KEY_MAX = 190;

const EXPECTED = `a non-empty string of at most ${IDEMPOTENCY_KEY_MAX} characters`;

function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' && v !== null ? 'an object' : String(v);
}

/** The key, checked; `label` says where it came from ("idempotencyKey in schedule() options"). */
export function checkIdempotencyKey(v: unknown, label: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > IDEMPOTENCY_KEY_MAX) {
    const length = typeof v === 'string' && v.length > IDEMPOTENCY_KEY_MAX ? ` (${v.length} characters)` : '';
    throw new ValidationError(`Invalid ${label}: ${shown(v)}${length} — expected ${EXPECTED}`);
  }
  checkNoNul(v, label);
  return v;
}

/** What a stored task with the key says of the call that stored it. */
export interface KeyedTask {
  id: string;
  name: string;
  /** The dedupe hash: the task name and its canonical arguments. */
  hash: string;
}

/**
 * The stored task is the answer to a call with the same key when it is the same call: the same
 * task name and the same arguments. Another call under a taken key is an error in the application
 * (two operations share a key), and storing nothing silently would lose it.
 */
export function checkSameCall(key: string, stored: KeyedTask, call: { name: string; hash: string }): void {
  if (stored.name === call.name && stored.hash === call.hash) return;
  const what = stored.name === call.name ? `${stored.name} with other arguments` : stored.name;
  throw new ValidationError(
    `idempotencyKey ${shown(key)} already belongs to task ${what} (#${stored.id}); this call of ${call.name} was not stored — give each operation a key of its own`,
  );
}

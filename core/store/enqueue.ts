/**
 * Storing calls. One call follows its dedupe action in one transaction serialised on its hash
 * (check, reschedule or replace its twins, or insert; the rule is in docs/getting-started.md,
 * "Duplicates: the dedupe action"); many calls of one definition go in chunked multi-row inserts
 * in one transaction. Both respect a queue's `maxQueueSize`. A call with an idempotency key whose
 * task is stored (pending, or finished and kept) gets that task instead (policy/idempotency.ts),
 * serialised on the key. Nothing is stored when anything fails.
 */
import type { Knex } from 'knex';
import { QueueFullError } from '../errors.js';
import type { DedupeAction, EnqueueOutcome } from '../types.js';
import type { Db } from './dialects/dialect.js';
import type { UniformRows } from './dialects/insert-rows.js';
import type { NewTask } from './rows.js';
import type { Store } from './store.js';
import { isRecurring, nextSlot, type Recurrence } from '../policy/recurrence.js';
import { checkSameCall } from '../policy/idempotency.js';
import { createHash } from 'node:crypto';

export interface EnqueuePlan {
  action: DedupeAction;
  /** The queue a twin must be in: a queue name, null (no queue), or undefined (any queue). */
  matchQueue: string | null | undefined;
  /** The queue's `maxQueueSize`, when it has one. */
  queueLimit: number | undefined;
  /** The application's transaction (or knex instance) to write in. */
  db?: Db;
}

/** What storing one call did: the id is the existing twin's when nothing was inserted. */
export interface StoredCall {
  id: string;
  runAt: number;
  outcome: EnqueueOutcome;
}

/** A pending task with the same hash as the call, ready or running. */
interface Twin {
  id: string;
  runAt: number;
  /** Claimed by a worker (its lease may have run out and not been recovered yet). */
  running: boolean;
  /** A running twin that will schedule a successor when it ends: its chain is already there. */
  chainGoesOn: boolean;
}

/**
 * Pending tasks with this hash (and queue, when given), oldest first. A running twin's chain goes
 * on when it repeats and its recurrence has a next slot (an ended chain's repeatUntil is at or
 * before its own slot: see endChains).
 */
async function findTwins(store: Store, trx: Db, hash: string, queue: string | null | undefined, nowMs: number): Promise<Twin[]> {
  const q = trx(store.tables.tasks)
    .select('id', 'run_at', 'scheduled_at', 'locked_by', 'repeat_every_ms', 'repeat_cron', 'timezone', 'repeat_until')
    .where('hash', hash)
    .orderBy('id');
  if (queue !== undefined) {
    if (queue === null) q.whereNull('queue');
    else q.where('queue', queue);
  }
  const rows = (await q) as Array<Record<string, unknown>>;
  return rows.map((r) => {
    const running = r.locked_by !== null && r.locked_by !== undefined;
    const recurrence: Recurrence = {
      everyMs: Number(r.repeat_every_ms ?? 0),
      cron: r.repeat_cron === null || r.repeat_cron === undefined ? null : String(r.repeat_cron),
      timezone: r.timezone === null || r.timezone === undefined ? null : String(r.timezone),
      untilMs: r.repeat_until === null || r.repeat_until === undefined ? null : Number(r.repeat_until),
    };
    const chainGoesOn = running && isRecurring(recurrence) && nextSlot(recurrence, Number(r.scheduled_at), nowMs) !== null;
    return { id: String(r.id), runAt: Number(r.run_at), running, chainGoesOn };
  });
}

async function rescheduleTwins(store: Store, trx: Db, ids: string[], runAt: number, priority: number): Promise<number> {
  return trx(store.tables.tasks)
    .whereIn('id', ids)
    .whereNull('locked_by')
    .update({ run_at: runAt, scheduled_at: runAt, priority });
}

async function deleteTwins(store: Store, trx: Db, hash: string): Promise<number> {
  return trx(store.tables.tasks).where('hash', hash).whereNull('locked_by').del();
}

/**
 * Ends the repeat chains of running twins: each finishes its run, but its recurrence now ends at
 * its own slot, so the run schedules no successor (the settle transaction reads the stored end
 * under the same hash lock: guardSuccessors in settle.ts). Returns how many.
 */
async function endChains(store: Store, trx: Db, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  return trx(store.tables.tasks)
    .whereIn('id', ids)
    .whereNotNull('locked_by')
    .where((b) => b.whereNull('repeat_until').orWhere('repeat_until', '>', trx.ref('scheduled_at')))
    .update({ repeat_until: trx.ref('scheduled_at') });
}

async function checkQueueSize(store: Store, trx: Knex.Transaction, queue: string, limit: number, adding: number, nowMs: number): Promise<void> {
  // Serialise enqueues into this queue so two callers cannot both take the last place.
  await store.lockKey(trx, `queue:${queue}`, nowMs);
  const n = await store.countPendingInQueue(trx, queue);
  if (n + adding > limit) {
    throw new QueueFullError(`Queue "${queue}" is full: it holds ${n} pending task(s) and its maxQueueSize is ${limit}`);
  }
}

/** Keys per look-up and per lock upsert: under every database's bind-parameter limit. */
const KEY_CHUNK = 400;

/** A stored task that holds an idempotency key. */
interface KeyHolder {
  id: string;
  name: string;
  hash: string;
  runAt: number;
}

/**
 * The lock row of an idempotency key: its SHA-1, so that any key fits the lock table's key column
 * (`idem:` and 40 hex digits), and prune-results can tell these rows apart.
 */
export function idempotencyLock(key: string): string {
  return `idem:${createHash('sha1').update(key).digest('hex')}`;
}

/**
 * Takes the lock rows of these keys, in key order (two bulks sharing keys then wait for each
 * other instead of deadlocking), a chunk of rows per upsert.
 */
async function lockIdempotencyKeys(store: Store, trx: Knex.Transaction, keys: readonly string[], nowMs: number): Promise<void> {
  const locks = [...new Set(keys.map(idempotencyLock))].sort();
  for (let i = 0; i < locks.length; i += KEY_CHUNK) {
    const rows = locks.slice(i, i + KEY_CHUNK).map((key) => ({ key, locked_at: nowMs }));
    await trx(store.tables.locks).insert(rows).onConflict('key').merge(['locked_at']);
  }
}

/**
 * The tasks that hold these keys: pending ones first, then finished ones whose results are kept.
 * A task that finishes meanwhile moves in one transaction, so it is found in one table or the
 * other (read committed: the second read sees the move).
 *
 * On MySQL/MariaDB the reads lock (shared): a plain read in REPEATABLE READ, the default, sees
 * the transaction's snapshot, and inside an application's transaction that snapshot may predate
 * the commit the key lock waited for; the insert would then meet the key's unique index. A
 * locking read sees the latest commit. PostgreSQL reads committed data at each statement.
 */
async function keyHolders(store: Store, trx: Db, keys: readonly string[]): Promise<Map<string, KeyHolder>> {
  const found = new Map<string, KeyHolder>();
  const unique = [...new Set(keys)];
  const latest = (q: Knex.QueryBuilder) => (store.dialect.name === 'mysql' ? q.forShare() : q);
  for (let i = 0; i < unique.length; i += KEY_CHUNK) {
    const part = unique.slice(i, i + KEY_CHUNK);
    const pending = (await latest(trx(store.tables.tasks).select('id', 'name', 'hash', 'run_at', 'idempotency_key').whereIn('idempotency_key', part))) as Array<Record<string, unknown>>;
    for (const r of pending) found.set(String(r.idempotency_key), { id: String(r.id), name: String(r.name), hash: String(r.hash), runAt: Number(r.run_at) });
    const rest = part.filter((k) => !found.has(k));
    if (rest.length === 0) continue;
    const done = (await latest(trx(store.tables.completed).select('task_id', 'name', 'hash', 'run_at', 'idempotency_key').whereIn('idempotency_key', rest))) as Array<Record<string, unknown>>;
    for (const r of done) found.set(String(r.idempotency_key), { id: String(r.task_id), name: String(r.name), hash: String(r.hash), runAt: Number(r.run_at) });
  }
  return found;
}

/** The stored task as the answer to a call under its key (or the error: another call). */
function existingCall(key: string, holder: KeyHolder, call: { name: string; hash: string }): StoredCall {
  checkSameCall(key, holder, call);
  return { id: holder.id, runAt: holder.runAt, outcome: 'existing' };
}

/** Stores one call following its plan. */
export async function insertCall(store: Store, task: NewTask, plan: EnqueuePlan, nowMs: number): Promise<StoredCall> {
  const limited = task.queue !== null && plan.queueLimit !== undefined;
  const key = task.idempotencyKey;
  if (plan.action === 'schedule' && !limited && key === null) {
    const [id] = await store.insertTasks([task], plan.db);
    return { id: id!, runAt: task.runAt, outcome: 'created' };
  }
  return store.tx(async (trx) => {
    // A lock comes first: on SQLite a write transaction must begin with a write. The key's lock
    // makes a second call with the key wait until the first has committed, and then find its task.
    if (key !== null) {
      await lockIdempotencyKeys(store, trx, [key], nowMs);
      const holder = (await keyHolders(store, trx, [key])).get(key);
      if (holder) return existingCall(key, holder, task);
    }
    // The end of a run takes the hash lock too before it writes a successor, so the twins cannot
    // change under us.
    if (key === null || plan.action !== 'schedule') await store.lockKey(trx, `hash:${task.hash}`, nowMs);
    if (plan.action === 'checkExisting' || plan.action === 'rescheduleExisting') {
      const twins = await findTwins(store, trx, task.hash, plan.matchQueue, nowMs);
      const ready = twins.filter((t) => !t.running);
      const chain = twins.find((t) => t.chainGoesOn);
      if (ready.length > 0 && plan.action === 'rescheduleExisting') {
        await rescheduleTwins(store, trx, ready.map((t) => t.id), task.runAt, task.priority);
        return { id: ready[0]!.id, runAt: task.runAt, outcome: 'rescheduled' };
      }
      // A running task cannot be moved; its chain is there all the same.
      const existing = ready[0] ?? chain;
      if (existing) return { id: existing.id, runAt: existing.runAt, outcome: 'existing' };
    }
    let replaced = 0;
    if (plan.action === 'replaceExisting') {
      replaced = await deleteTwins(store, trx, task.hash);
      const chains = (await findTwins(store, trx, task.hash, undefined, nowMs)).filter((t) => t.chainGoesOn);
      replaced += await endChains(store, trx, chains.map((t) => t.id));
    }
    if (limited) await checkQueueSize(store, trx, task.queue!, plan.queueLimit!, 1, nowMs);
    const [id] = await store.insertTasks([task], trx);
    return { id: id!, runAt: task.runAt, outcome: replaced > 0 ? 'replaced' : 'created' };
  }, plan.db);
}

/** Stores many calls (rows sharing one queue) in one transaction; returns their ids in order. */
export async function insertCalls(
  store: Store,
  rows: UniformRows,
  queue: string | null,
  plan: Pick<EnqueuePlan, 'queueLimit' | 'db'>,
  nowMs: number,
): Promise<string[]> {
  return store.tx(async (trx) => {
    if (queue !== null && plan.queueLimit !== undefined) await checkQueueSize(store, trx, queue, plan.queueLimit, rows.values.length, nowMs);
    return store.insertTasks(rows, trx);
  }, plan.db);
}

/** Where a bulk's rows hold their idempotency keys and hashes (each row has a key). */
export interface BulkKeys {
  name: string;
  keyAt: number;
  hashAt: number;
}

/**
 * Stores many calls that each have an idempotency key, in one transaction; returns what became of
 * each, in order. A call whose key is taken (stored before, or by an earlier call of this bulk)
 * gets that task; only the others are inserted and counted against `maxQueueSize`.
 */
export async function insertKeyedCalls(
  store: Store,
  rows: UniformRows,
  queue: string | null,
  plan: Pick<EnqueuePlan, 'queueLimit' | 'db'>,
  nowMs: number,
  keys: BulkKeys,
): Promise<StoredCall[]> {
  return store.tx(async (trx) => {
    const all = rows.values.map((r) => r[keys.keyAt] as string);
    // The locks come first: on SQLite a write transaction must begin with a write.
    await lockIdempotencyKeys(store, trx, all, nowMs);
    const holders = await keyHolders(store, trx, all);
    const firstAt = new Map<string, number>();
    const fresh: unknown[][] = [];
    // Each call's answer: a stored task, an index into `fresh` (>= 0), or -1 - i for call i's.
    const answers = rows.values.map((row, i): StoredCall | number => {
      const key = all[i]!;
      const call = { name: keys.name, hash: row[keys.hashAt] as string };
      const holder = holders.get(key);
      if (holder) return existingCall(key, holder, call);
      const earlier = firstAt.get(key);
      // The same key twice in one bulk: the second call is the first one again, or a conflict.
      if (earlier !== undefined) {
        checkSameCall(key, { id: `call ${earlier + 1} of this bulk`, name: keys.name, hash: rows.values[earlier]![keys.hashAt] as string }, call);
        return -1 - earlier;
      }
      firstAt.set(key, i);
      fresh.push(row);
      return fresh.length - 1;
    });
    if (fresh.length > 0 && queue !== null && plan.queueLimit !== undefined) await checkQueueSize(store, trx, queue, plan.queueLimit, fresh.length, nowMs);
    const ids = fresh.length > 0 ? await store.insertTasks({ columns: rows.columns, values: fresh }, trx) : [];
    const runAtAt = rows.columns.indexOf('run_at');
    const resolved = answers.map((a) => (typeof a === 'number' && a >= 0 ? { id: ids[a]!, runAt: Number(fresh[a]![runAtAt]), outcome: 'created' as const } : a));
    return resolved.map((a) => (typeof a === 'number' ? { ...(resolved[-1 - a] as StoredCall), outcome: 'existing' as const } : a));
  }, plan.db);
}

/**
 * Storing calls. One call follows its dedupe action in one transaction serialised on its hash
 * (check, reschedule or replace unlocked twins, or insert); many calls of one definition go in
 * chunked multi-row inserts in one transaction. Both respect a queue's `maxQueueSize`. Nothing is
 * stored when anything fails.
 */
import type { Knex } from 'knex';
import { QueueFullError } from '../errors.js';
import type { DedupeAction, EnqueueOutcome } from '../types.js';
import type { Db } from './dialects/dialect.js';
import type { UniformRows } from './dialects/insert-rows.js';
import type { NewTask } from './rows.js';
import type { Store } from './store.js';

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

/** Unlocked pending tasks with this hash (and queue, when given), oldest first. */
async function findTwins(store: Store, trx: Db, hash: string, queue: string | null | undefined): Promise<Array<{ id: string; runAt: number }>> {
  const q = trx(store.tables.tasks).select('id', 'run_at').where('hash', hash).whereNull('locked_by').orderBy('id');
  if (queue !== undefined) {
    if (queue === null) q.whereNull('queue');
    else q.where('queue', queue);
  }
  const rows = (await q) as Array<{ id: unknown; run_at: unknown }>;
  return rows.map((r) => ({ id: String(r.id), runAt: Number(r.run_at) }));
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

async function checkQueueSize(store: Store, trx: Knex.Transaction, queue: string, limit: number, adding: number, nowMs: number): Promise<void> {
  // Serialise enqueues into this queue so two callers cannot both take the last place.
  await store.lockKey(trx, `queue:${queue}`, nowMs);
  const n = await store.countPendingInQueue(trx, queue);
  if (n + adding > limit) {
    throw new QueueFullError(`Queue "${queue}" is full: it holds ${n} pending task(s) and its maxQueueSize is ${limit}`);
  }
}

/** Stores one call following its plan. */
export async function insertCall(store: Store, task: NewTask, plan: EnqueuePlan, nowMs: number): Promise<StoredCall> {
  const limited = task.queue !== null && plan.queueLimit !== undefined;
  if (plan.action === 'schedule' && !limited) {
    const [id] = await store.insertTasks([task], plan.db);
    return { id: id!, runAt: task.runAt, outcome: 'created' };
  }
  return store.tx(async (trx) => {
    // The lock comes first: on SQLite a write transaction must begin with a write.
    await store.lockKey(trx, `hash:${task.hash}`, nowMs);
    if (plan.action === 'checkExisting' || plan.action === 'rescheduleExisting') {
      const twins = await findTwins(store, trx, task.hash, plan.matchQueue);
      if (twins.length > 0) {
        if (plan.action === 'checkExisting') return { id: twins[0]!.id, runAt: twins[0]!.runAt, outcome: 'existing' };
        await rescheduleTwins(store, trx, twins.map((t) => t.id), task.runAt, task.priority);
        return { id: twins[0]!.id, runAt: task.runAt, outcome: 'rescheduled' };
      }
    }
    let replaced = 0;
    if (plan.action === 'replaceExisting') replaced = await deleteTwins(store, trx, task.hash);
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

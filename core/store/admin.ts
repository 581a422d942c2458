/**
 * The SQL behind the operations commands: statistics and health numbers, retrying failed tasks
 * as new pending copies, and deleting tasks (one task's full record is in task-detail.ts). Portable knex only; rows are
 * mapped by `rows.ts`. Every change is a guarded statement whose affected-row count is checked.
 */
import type { Knex } from 'knex';
import { BgtasksError, TaskNotFoundError, ValidationError } from '../errors.js';
import { pendingStatus } from '../policy/status.js';
import { whereLeaseRanOut, whereReady, whereRunning } from './status-sql.js';
import { plainTask, toCompletedRow, type NewTask } from './rows.js';
import type { Store } from './store.js';
import type { CompletedRow, Status } from '../types.js';

const HOUR_MS = 3_600_000;
/** Ids per IN (…) list: far below every database's bind-parameter limit. */
const ID_CHUNK = 500;

/** A task changed state between the checks of a command and its write; nothing was written. */
export class TaskChangedError extends BgtasksError {}

/** The error for an id that is in neither table (the wording of `getResult`). */
export function notFound(store: Store, id: string): TaskNotFoundError {
  return new TaskNotFoundError(`No task with id ${id} (pending or completed) in ${store.conn.spec.display}`);
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function whereQueues(q: Knex.QueryBuilder, queues: readonly string[] | null | undefined): Knex.QueryBuilder {
  if (queues) q.whereIn('queue', queues as string[]);
  return q;
}

// ── Statistics and health ──────────────────────────────────────────────────────────────────

export interface QueueCounts {
  /** null: tasks without a queue. */
  queue: string | null;
  READY: number;
  RUNNING: number;
  SUCCESSFUL: number;
  FAILED: number;
}

export interface OldestDue {
  id: string;
  name: string;
  queue: string | null;
  /** When it became due: its run time, or when its worker's lease expired. */
  dueSince: Date;
  waitSeconds: number;
}

export interface HealthNumbers {
  /** The READY task that has been due the longest, or null when nothing is due. */
  oldestDue: OldestDue | null;
  /** Tasks that failed for good in the last hour. */
  failuresLastHour: number;
}

export interface Stats extends HealthNumbers {
  at: Date;
  /** One entry per queue that has tasks, sorted by name (no queue first). */
  queues: QueueCounts[];
  totals: Record<Status, number>;
}

type CountRow = { queue: string | null; n: unknown };

async function countByQueue(store: Store, q: Knex.QueryBuilder): Promise<CountRow[]> {
  return (await store.retrying(() => q.select('queue').count({ n: '*' }).groupBy('queue'))) as CountRow[];
}

/**
 * The health numbers: the oldest due READY task's wait and the last hour's failures. Tasks of the
 * queues in `notWaiting` (paused ones, for `health`) are not counted as waiting.
 */
export async function healthNumbers(store: Store, nowMs: number, queues?: readonly string[] | null, notWaiting: readonly string[] = []): Promise<HealthNumbers> {
  const { tasks, completed } = store.tables;
  const whereWaits = (q: Knex.QueryBuilder) => {
    whereQueues(q, queues);
    if (notWaiting.length > 0) q.where((b) => b.whereNull('queue').orWhereNotIn('queue', notWaiting as string[]));
    return q;
  };
  // Due and unclaimed: waiting since its run time.
  const waiting = (await store.retrying(() =>
    whereWaits(store.knex(tasks).select('id', 'name', 'queue', 'run_at').whereNull('locked_by').where('run_at', '<=', nowMs))
      .orderBy([{ column: 'run_at' }, { column: 'id' }])
      .first(),
  )) as Record<string, unknown> | undefined;
  // Claimed by a worker that stopped renewing its lease: READY again, waiting since the lease expired.
  const orphaned = (await store.retrying(() =>
    whereWaits(whereLeaseRanOut(store.knex(tasks).select('id', 'name', 'queue', 'locked_until'), nowMs))
      .orderBy([{ column: 'locked_until' }, { column: 'id' }])
      .first(),
  )) as Record<string, unknown> | undefined;
  const candidates = [
    waiting && { row: waiting, since: Number(waiting.run_at) },
    orphaned && { row: orphaned, since: Number(orphaned.locked_until) },
  ].filter((x): x is { row: Record<string, unknown>; since: number } => Boolean(x));
  candidates.sort((a, b) => a.since - b.since);
  const oldest = candidates[0];
  const [failed] = (await store.retrying(() =>
    whereQueues(store.knex(completed).count({ n: '*' }).whereNotNull('failed_at').where('failed_at', '>', nowMs - HOUR_MS), queues),
  )) as Array<{ n: unknown }>;
  return {
    oldestDue: oldest
      ? {
          id: String(oldest.row.id),
          name: String(oldest.row.name),
          queue: oldest.row.queue === null || oldest.row.queue === undefined ? null : String(oldest.row.queue),
          dueSince: new Date(oldest.since),
          waitSeconds: Math.max(0, (nowMs - oldest.since) / 1000),
        }
      : null,
    failuresLastHour: Number(failed?.n ?? 0),
  };
}

/** Counts per queue and status, with the health numbers. */
export async function collectStats(store: Store, nowMs: number, queues?: readonly string[] | null): Promise<Stats> {
  const { tasks, completed } = store.tables;
  const running = await countByQueue(store, whereQueues(whereRunning(store.knex(tasks), nowMs), queues));
  const ready = await countByQueue(store, whereQueues(whereReady(store.knex(tasks), nowMs), queues));
  const ok = await countByQueue(store, whereQueues(store.knex(completed).whereNull('failed_at'), queues));
  const failed = await countByQueue(store, whereQueues(store.knex(completed).whereNotNull('failed_at'), queues));
  const byQueue = new Map<string | null, QueueCounts>();
  const add = (rows: CountRow[], status: Status) => {
    for (const r of rows) {
      const queue = r.queue === null || r.queue === undefined ? null : String(r.queue);
      let entry = byQueue.get(queue);
      if (!entry) byQueue.set(queue, (entry = { queue, READY: 0, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 }));
      entry[status] += Number(r.n);
    }
  };
  add(ready, 'READY');
  add(running, 'RUNNING');
  add(ok, 'SUCCESSFUL');
  add(failed, 'FAILED');
  const list = [...byQueue.values()].sort((a, b) => (a.queue === null ? -1 : b.queue === null ? 1 : a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
  const totals: Record<Status, number> = { READY: 0, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 };
  for (const e of list) for (const s of Object.keys(totals) as Status[]) totals[s] += e[s];
  return { at: new Date(nowMs), queues: list, totals, ...(await healthNumbers(store, nowMs, queues)) };
}

// ── Retry ──────────────────────────────────────────────────────────────────────────────────

/** A failed task and the pending copy made of it. */
export interface RetryOutcome {
  id: string;
  newId: string;
  name: string;
  queue: string | null;
}

/**
 * The pending copy of a failed task: the same call (name, arguments, queue, priority, verbose
 * name, creator), due now with no attempts. It is a one-off: a recurring task's chain already
 * goes on by itself, so the copy carries no recurrence (and no expiry).
 */
export function retryCopyOf(c: CompletedRow, nowMs: number): NewTask {
  return plainTask({
    name: c.name,
    args: c.args,
    hash: c.hash,
    queue: c.queue,
    priority: c.priority,
    verboseName: c.verboseName,
    creatorType: c.creatorType,
    creatorId: c.creatorId,
    runAt: nowMs,
    enqueuedAt: nowMs,
    concurrencyKey: c.concurrencyKey,
    // An operator's retry continues the trace of the enqueue: the same message, delivered again.
    traceContext: c.traceContext,
  });
}

/** The failed results with these ids; a usage error naming the first id that is unknown or not FAILED. */
export async function failedByIds(store: Store, ids: readonly string[], nowMs: number): Promise<CompletedRow[]> {
  const found = new Map<string, CompletedRow>();
  for (const part of chunks(ids, ID_CHUNK)) {
    const rows = (await store.retrying(() => store.knex(store.tables.completed).select('*').whereIn('task_id', part))) as Record<string, unknown>[];
    for (const r of rows) {
      const c = toCompletedRow(r);
      found.set(c.taskId, c);
    }
  }
  for (const id of ids) {
    const c = found.get(id);
    if (c && c.failedAt !== null) continue;
    if (c) throw new ValidationError(`Task ${c.name} #${id} is SUCCESSFUL; only FAILED tasks can be retried`);
    const pending = await store.retrying(() => store.findPending(id));
    if (pending) {
      throw new ValidationError(`Task ${pending.name} #${id} is ${pendingStatus(pending, nowMs)}, not FAILED; only FAILED tasks can be retried`);
    }
    throw notFound(store, id);
  }
  return ids.map((id) => found.get(id)!);
}

export interface FailedFilter {
  /** Failed at or after this time (epoch ms). */
  sinceMs?: number | null;
  queues?: readonly string[] | null;
  names?: readonly string[] | null;
  /** Only ids above this one (paging). */
  afterId?: string | null;
  /** Only ids up to this one (a snapshot bound, so copies that fail again are not picked up). */
  upToId?: string | null;
  limit: number;
}

/** Failed results matching `f`, in id order. */
export async function findFailed(store: Store, f: FailedFilter): Promise<CompletedRow[]> {
  const q = whereQueues(store.knex(store.tables.completed).select('*').whereNotNull('failed_at'), f.queues);
  if (f.sinceMs !== undefined && f.sinceMs !== null) q.where('failed_at', '>=', f.sinceMs);
  if (f.names) q.whereIn('name', f.names as string[]);
  if (f.afterId) q.where('task_id', '>', f.afterId);
  if (f.upToId) q.where('task_id', '<=', f.upToId);
  const rows = (await store.retrying(() => q.orderBy('task_id').limit(f.limit))) as Record<string, unknown>[];
  return rows.map(toCompletedRow);
}

/** The highest id in the completed table now, or null when it is empty. */
export async function maxCompletedId(store: Store): Promise<string | null> {
  const [row] = (await store.retrying(() => store.knex(store.tables.completed).max({ m: 'task_id' }))) as Array<{ m: unknown }>;
  return row?.m === null || row?.m === undefined ? null : String(row.m);
}

/** Enqueues a pending copy of each failed result, all in one transaction. The results stay. */
export async function retryFailed(store: Store, failed: readonly CompletedRow[], nowMs: number): Promise<RetryOutcome[]> {
  if (failed.length === 0) return [];
  const ids = await store.insertTasks(failed.map((c) => retryCopyOf(c, nowMs)));
  return failed.map((c, i) => ({ id: c.taskId, newId: ids[i]!, name: c.name, queue: c.queue }));
}

// ── Delete ─────────────────────────────────────────────────────────────────────────────────

export interface DeletePlanItem {
  id: string;
  name: string;
  status: Status;
  /** Which table holds it. */
  where: 'pending' | 'completed';
}

/**
 * What deleting `ids` would do; changes nothing. Unknown ids are a usage error, and so is a
 * RUNNING task (a live lease) unless `force`.
 */
export async function planDelete(store: Store, ids: readonly string[], nowMs: number, force: boolean): Promise<DeletePlanItem[]> {
  const plan: DeletePlanItem[] = [];
  for (const id of ids) {
    const pending = await store.retrying(() => store.findPending(id));
    if (pending) {
      const status = pendingStatus(pending, nowMs);
      if (status === 'RUNNING' && !force) {
        throw new ValidationError(
          `Task ${pending.name} #${id} is RUNNING (worker ${pending.lockedBy}); cancel it with \`bgtasks cancel ${id}\`, or delete it anyway with --force`,
        );
      }
      plan.push({ id, name: pending.name, status, where: 'pending' });
      continue;
    }
    const done = await store.retrying(() => store.findCompleted(id));
    if (!done) throw notFound(store, id);
    plan.push({ id, name: done.name, status: done.failedAt === null ? 'SUCCESSFUL' : 'FAILED', where: 'completed' });
  }
  return plan;
}

/**
 * Deletes the planned tasks in one transaction. Pending ones are deleted only while unclaimed
 * or under an expired lease (any state with `force`). When a task changed meanwhile (claimed,
 * finished, deleted), nothing is deleted and TaskChangedError says which.
 */
export async function deleteTasks(store: Store, plan: readonly DeletePlanItem[], nowMs: number, force: boolean): Promise<number> {
  const pendingIds = plan.filter((p) => p.where === 'pending').map((p) => p.id);
  const completedIds = plan.filter((p) => p.where === 'completed').map((p) => p.id);
  return store.tx(async (trx) => {
    let total = 0;
    for (const part of chunks(pendingIds, ID_CHUNK)) {
      const q = trx(store.tables.tasks).whereIn('id', part);
      if (!force) whereReady(q, nowMs);
      const n = await q.del();
      if (n !== part.length) throw await changed(trx, store.tables.tasks, 'id', part, 'pending');
      total += n;
    }
    for (const part of chunks(completedIds, ID_CHUNK)) {
      const n = await trx(store.tables.completed).whereIn('task_id', part).del();
      if (n !== part.length) throw await changed(trx, store.tables.completed, 'task_id', part, 'completed');
      total += n;
    }
    return total;
  });
}

/** Names the task that was not as planned, from inside the transaction about to roll back. */
async function changed(trx: Knex.Transaction, table: string, key: string, ids: string[], where: 'pending' | 'completed'): Promise<TaskChangedError> {
  // Rows of `ids` still there after the guarded delete are ones the guard refused: claimed meanwhile.
  const left = (await trx(table).select(key).whereIn(key, ids)) as Array<Record<string, unknown>>;
  const what =
    where === 'pending' && left.length > 0
      ? `#${String(left[0]![key])} started running`
      : where === 'pending'
        ? 'one of the pending tasks finished or was deleted'
        : 'one of the finished tasks was deleted';
  return new TaskChangedError(`Task ${what} meanwhile; nothing was deleted — check and run the command again`);
}

/**
 * Finding tasks: by state, queue, name, creator and finish time. Serves the API (the reference's
 * `created_by`, `failed(within)`, `succeeded(within)`) and `bgtasks list`.
 */
import type { Knex } from 'knex';
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import { ValidationError } from '../errors.js';
import { readResult, resultOfCompleted, resultOfPending, type TaskResult } from './results.js';
import { toCompletedRow, toTaskRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { storeFor } from '../store/open.js';
import { STATUSES, type Creator, type Status } from '../types.js';

export interface TaskFilter {
  /** One status or several. Default: all four. */
  state?: Status | Status[];
  /** Queue name(s); `null` matches tasks without a queue. */
  queue?: string | null | Array<string | null>;
  name?: string | string[];
  creator?: Creator;
  /** Finished tasks only: finished within the last this-many seconds. */
  finishedWithin?: number;
  /** Default 100. */
  limit?: number;
}

function asList<T>(v: T | T[] | undefined): T[] | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? v : [v];
}

function applyCommon(q: Knex.QueryBuilder, f: TaskFilter): void {
  const queues = asList(f.queue);
  if (queues) {
    const named = queues.filter((x): x is string => x !== null);
    const withNull = queues.includes(null);
    q.where((b) => {
      if (named.length) b.whereIn('queue', named);
      if (withNull) b.orWhereNull('queue');
    });
  }
  const names = asList(f.name);
  if (names) q.whereIn('name', names);
  if (f.creator) q.where('creator_type', f.creator.type).where('creator_id', String(f.creator.id));
}

/** Tasks matching `filter`: pending ones first (by run time), then finished ones (newest first). */
export async function findTasks(store: Store, f: TaskFilter): Promise<TaskResult[]> {
  const states = asList(f.state) ?? [...STATUSES];
  for (const s of states) {
    if (!STATUSES.includes(s)) throw new ValidationError(`Invalid state ${JSON.stringify(s)} — expected one of ${STATUSES.join(', ')}`);
  }
  const limit = f.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1) throw new ValidationError(`Invalid limit ${JSON.stringify(f.limit)} — expected an integer >= 1`);
  const now = currentClock().now();
  const out: TaskResult[] = [];
  const reload = (id: string) => () => readResult(store, id);
  const wantReady = states.includes('READY');
  const wantRunning = states.includes('RUNNING');
  if ((wantReady || wantRunning) && f.finishedWithin === undefined) {
    const q = store.knex(store.tables.tasks).select('*');
    applyCommon(q, f);
    if (wantReady !== wantRunning) {
      // RUNNING means a live lease; an expired one counts as READY (it is about to be recovered).
      if (wantRunning) q.whereNotNull('locked_by').where('locked_until', '>', now);
      else q.where((b) => b.whereNull('locked_by').orWhere('locked_until', '<=', now));
    }
    const rows = (await q.orderBy([{ column: 'run_at' }, { column: 'id' }]).limit(limit)) as Record<string, unknown>[];
    for (const r of rows) {
      const t = toTaskRow(r);
      out.push(resultOfPending(t, now, reload(t.id)));
    }
  }
  const wantOk = states.includes('SUCCESSFUL');
  const wantFailed = states.includes('FAILED');
  if ((wantOk || wantFailed) && out.length < limit) {
    const q = store.knex(store.tables.completed).select('*');
    applyCommon(q, f);
    if (wantOk !== wantFailed) {
      if (wantFailed) q.whereNotNull('failed_at');
      else q.whereNull('failed_at');
    }
    if (f.finishedWithin !== undefined) q.where('finished_at', '>', now - f.finishedWithin * 1000);
    const rows = (await q.orderBy([{ column: 'finished_at', order: 'desc' }, { column: 'task_id', order: 'desc' }]).limit(limit - out.length)) as Record<string, unknown>[];
    for (const r of rows) {
      const c = toCompletedRow(r);
      out.push(resultOfCompleted(c, reload(c.taskId)));
    }
  }
  return out;
}

/** Tasks matching `filter` in the configured database (or a named connection). */
export async function listTasks(filter: TaskFilter = {}, options: { connection?: string } = {}): Promise<TaskResult[]> {
  const store = await storeFor(await getSettings(), options.connection);
  return findTasks(store, filter);
}

type Connection = { connection?: string };

/** Pending and finished tasks scheduled by `creator` (the reference's `created_by`). */
export function createdBy(creator: Creator, filter: Omit<TaskFilter, 'creator'> & Connection = {}): Promise<TaskResult[]> {
  const { connection, ...f } = filter;
  return listTasks({ ...f, creator }, { connection });
}

/** Tasks that failed for good, optionally only within the last `within` seconds. */
export function failedTasks(within?: number, filter: Omit<TaskFilter, 'state' | 'finishedWithin'> & Connection = {}): Promise<TaskResult[]> {
  const { connection, ...f } = filter;
  return listTasks({ ...f, state: 'FAILED', finishedWithin: within }, { connection });
}

/** Tasks that succeeded, optionally only within the last `within` seconds. */
export function succeededTasks(within?: number, filter: Omit<TaskFilter, 'state' | 'finishedWithin'> & Connection = {}): Promise<TaskResult[]> {
  const { connection, ...f } = filter;
  return listTasks({ ...f, state: 'SUCCESSFUL', finishedWithin: within }, { connection });
}

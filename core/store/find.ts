/**
 * Finding tasks by status, queue, name, creator and finish time, in both tables: pending ones
 * first (by run time), then finished ones (newest first). Serves `listTasks` and `bgtasks list`.
 */
import type { Knex } from 'knex';
import { ValidationError } from '../errors.js';
import { STATUSES, type CompletedRow, type Creator, type Status, type TaskRow } from '../types.js';
import { toCompletedRow, toTaskRow } from './rows.js';
import { whereReady, whereRunning } from './status-sql.js';
import type { Store } from './store.js';

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

/** The rows a filter found: pending ones first, in the order the listing shows them. */
export interface FoundTasks {
  pending: TaskRow[];
  completed: CompletedRow[];
}

export function asList<T>(v: T | T[] | undefined): T[] | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? v : [v];
}

/** The filter's states and limit, checked: a clear error naming a bad value. */
export function checkFilter(f: TaskFilter): { states: Status[]; limit: number } {
  const states = asList(f.state) ?? [...STATUSES];
  for (const s of states) {
    if (!STATUSES.includes(s)) throw new ValidationError(`Invalid state ${JSON.stringify(s)} — expected one of ${STATUSES.join(', ')}`);
  }
  const limit = f.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1) throw new ValidationError(`Invalid limit ${JSON.stringify(f.limit)} — expected an integer >= 1`);
  return { states, limit };
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

/** Tasks matching `f` at `nowMs`, at most `limit` in all. */
export async function findTasks(store: Store, f: TaskFilter, nowMs: number): Promise<FoundTasks> {
  const { states, limit } = checkFilter(f);
  const found: FoundTasks = { pending: [], completed: [] };
  const wantReady = states.includes('READY');
  const wantRunning = states.includes('RUNNING');
  if ((wantReady || wantRunning) && f.finishedWithin === undefined) {
    const q = store.knex(store.tables.tasks).select('*');
    applyCommon(q, f);
    if (wantReady !== wantRunning) (wantRunning ? whereRunning : whereReady)(q, nowMs);
    const rows = (await q.orderBy([{ column: 'run_at' }, { column: 'id' }]).limit(limit)) as Record<string, unknown>[];
    found.pending = rows.map(toTaskRow);
  }
  const wantOk = states.includes('SUCCESSFUL');
  const wantFailed = states.includes('FAILED');
  if ((wantOk || wantFailed) && found.pending.length < limit) {
    const q = store.knex(store.tables.completed).select('*');
    applyCommon(q, f);
    if (wantOk !== wantFailed) {
      if (wantFailed) q.whereNotNull('failed_at');
      else q.whereNull('failed_at');
    }
    if (f.finishedWithin !== undefined) q.where('finished_at', '>', nowMs - f.finishedWithin * 1000);
    const rows = (await q
      .orderBy([{ column: 'finished_at', order: 'desc' }, { column: 'task_id', order: 'desc' }])
      .limit(limit - found.pending.length)) as Record<string, unknown>[];
    found.completed = rows.map(toCompletedRow);
  }
  return found;
}

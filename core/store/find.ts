/**
 * Finding tasks by status, queue, name, creator and finish time, in both tables: pending ones
 * first (by run time), then finished ones (newest first). Serves `listTasks` and `bgtasks list`.
 */
import type { Knex } from 'knex';
import { ValidationError } from '../errors.js';
import { MAX_SPAN_SECONDS } from '../policy/when.js';
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

export const FILTER_FIELDS = ['state', 'queue', 'name', 'creator', 'finishedWithin', 'limit'] as const;

// JSON shows the field that is wrong inside an object or a list; NaN and Infinity as themselves.
const shown = (v: unknown): string => (typeof v === 'string' || (typeof v === 'object' && v !== null) ? JSON.stringify(v) : String(v));

const bad = (label: string, v: unknown, expected: string): never => {
  throw new ValidationError(`Invalid ${label}: ${shown(v)} — expected ${expected}`);
};

/** A "finished within" span: seconds > 0, fractions allowed, within the time range. */
export function checkFinishedWithin(v: unknown, label: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_SPAN_SECONDS) {
    bad(label, v, `a number of seconds > 0 and <= ${MAX_SPAN_SECONDS} (leave it out for any time)`);
  }
}

/** A creator to filter by: a malformed one would match no task (and a missing one in createdBy(), every task). */
export function checkCreator(v: unknown, label: string): void {
  const c = v as { type?: unknown; id?: unknown } | null;
  if (typeof c !== 'object' || c === null || typeof c.type !== 'string' || c.type === '' || !(typeof c.id === 'string' || (typeof c.id === 'number' && Number.isFinite(c.id)))) {
    bad(label, v, 'a { type, id } reference (type a non-empty string, id a string or number)');
  }
}

/**
 * The filter, checked before any query: a ValidationError naming a bad value, where a database
 * would throw its own error with the SQL, or match nothing. An unknown field is refused, not
 * ignored: `{ status: 'READY' }` would otherwise list every task.
 */
export function checkFilter(f: TaskFilter, where = 'the task filter', fields: readonly string[] = FILTER_FIELDS): { states: Status[]; limit: number } {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) bad(where, f, `an object with some of: ${fields.join(', ')}`);
  for (const [key, value] of Object.entries(f)) {
    if (value !== undefined && !fields.includes(key)) {
      const hint = key === 'status' && fields.includes('state') ? ' (a status is filtered by "state")' : '';
      throw new ValidationError(`Unknown field "${key}" in ${where} — expected one of: ${fields.join(', ')}${hint}`);
    }
  }
  const states = asList(f.state) ?? [...STATUSES];
  for (const s of states) {
    if (!STATUSES.includes(s)) bad(`state in ${where}`, s, `one of ${STATUSES.join(', ')}`);
  }
  for (const q of asList(f.queue) ?? []) {
    if (q !== null && typeof q !== 'string') bad(`queue in ${where}`, q, 'a queue name, null (tasks without a queue), or a list of them');
  }
  for (const n of asList(f.name) ?? []) {
    if (typeof n !== 'string') bad(`name in ${where}`, n, 'a task name or a list of them');
  }
  if (f.creator !== undefined) checkCreator(f.creator, `creator in ${where}`);
  if (f.finishedWithin !== undefined) checkFinishedWithin(f.finishedWithin, `finishedWithin in ${where}`);
  const limit = f.limit === undefined ? 100 : f.limit;
  // Every database takes a safe integer as LIMIT; PostgreSQL refuses a bigger one.
  if (!Number.isSafeInteger(limit) || limit < 1) bad(`limit in ${where}`, f.limit, `an integer from 1 to ${Number.MAX_SAFE_INTEGER}`);
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
    // PostgreSQL: a bigint column refuses a fractional bound ("invalid input syntax for type bigint").
    if (f.finishedWithin !== undefined) q.where('finished_at', '>', nowMs - Math.round(f.finishedWithin * 1000));
    const rows = (await q
      .orderBy([{ column: 'finished_at', order: 'desc' }, { column: 'task_id', order: 'desc' }])
      .limit(limit - found.pending.length)) as Record<string, unknown>[];
    found.completed = rows.map(toCompletedRow);
  }
  return found;
}

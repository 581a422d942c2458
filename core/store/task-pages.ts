/**
 * Filtered task lists across both tables, one page at a time, for the dashboard: keyset pages
 * (never OFFSET), so a deep page costs what the first one does. Each table is read in the page's
 * order with the cursor's bound and a LIMIT, through an index where one exists (migration 006:
 * `(enqueued_at, id)`, the default order); the two short lists are merged here. Statuses follow
 * the rule of policy/status.ts in its SQL form (status-sql.ts): RUNNING is a live lease, and a
 * task whose lease ran out counts READY.
 */
import { isTaskIdText } from '../base/task-id.js';
import type { Knex } from 'knex';
import { ValidationError } from '../errors.js';
import { pendingStatus } from '../policy/status.js';
import type { Status } from '../types.js';
import { whereContains } from './dialects/text-search.js';
import { readErrors } from './rows.js';
import { whereReady, whereRunning } from './status-sql.js';
import type { Store } from './store.js';

export type PageTimeField = 'enqueuedAt' | 'runAt' | 'finishedAt';
export type PageSortKey = PageTimeField | 'priority';

/** Which tasks; every field narrows, an absent or empty one does not. Times are epoch ms. */
export interface PageFilter {
  statuses?: readonly Status[];
  /** `null` in the list: tasks without a queue. */
  queues?: readonly (string | null)[];
  names?: readonly string[];
  /** A substring of the stored arguments' JSON text, byte for byte. */
  argsContain?: string;
  /** The class of the last error record (the `last_error_class` column). */
  errorClass?: string;
  /** `fromMs` inclusive, `toMs` exclusive; a null field never matches. */
  range?: { field: PageTimeField; fromMs?: number; toMs?: number };
  /** Only ids up to this one: a snapshot bound, so tasks created later are left out. */
  upToId?: string;
}

export interface PageSort {
  key: PageSortKey;
  direction: 'asc' | 'desc';
}

/** One row of a list: the columns a summary needs, statuses resolved at `nowMs`. */
export interface PageRow {
  id: string;
  name: string;
  verboseName: string | null;
  status: Status;
  queue: string | null;
  priority: number;
  attempts: number;
  /** The first ARGS_HEAD characters of the arguments' text. */
  argsHead: string;
  argsTruncated: boolean;
  enqueuedAt: number;
  runAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  workerId: string | null;
  lastError: { class: string; message: string } | null;
  cancelRequested: boolean;
}

export interface PageResult {
  rows: PageRow[];
  next: string | null;
  prev: string | null;
}

/** Characters of the arguments sent per row. */
export const ARGS_HEAD = 200;

interface Cursor {
  k: PageSortKey;
  d: 'asc' | 'desc';
  /** The sort value of the row to continue from (null: a pending task's finish time). */
  v: number | null;
  id: string;
  w: 'after' | 'before';
}


export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

/** Reads back a cursor this module made for this sort; anything else is a ValidationError. */
export function decodeCursor(text: string, sort: PageSort): Cursor {
  const bad = () => new ValidationError(`bad cursor ${JSON.stringify(text.slice(0, 40))}: not one this dashboard made (open the first page again)`);
  if (text.length > 300 || !/^[A-Za-z0-9_-]+$/.test(text)) throw bad();
  let c: Partial<Cursor>;
  try {
    c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    throw bad();
  }
  if (typeof c !== 'object' || c === null || typeof c.id !== 'string' || !isTaskIdText(c.id) || (c.w !== 'after' && c.w !== 'before')) throw bad();
  if (c.v !== null && !(typeof c.v === 'number' && Number.isSafeInteger(c.v))) throw bad();
  if (c.k !== sort.key || c.d !== sort.direction) {
    throw new ValidationError('bad cursor: it was made for another sort order (open the first page again)');
  }
  return c as Cursor;
}

/** The two tables as one shape: their id column, and each sort key's column (null: always NULL). */
interface Side {
  table: string;
  pending: boolean;
  id: string;
  column(key: PageSortKey): string | null;
}

function sides(store: Store): Side[] {
  const col = { enqueuedAt: 'enqueued_at', runAt: 'run_at', priority: 'priority' } as const;
  return [
    { table: store.tables.tasks, pending: true, id: 'id', column: (k) => (k === 'finishedAt' ? null : col[k]) },
    { table: store.tables.completed, pending: false, id: 'task_id', column: (k) => (k === 'finishedAt' ? 'finished_at' : col[k]) },
  ];
}

/**
 * Adds the filter to a query on one table; false when no row of that table can match (then the
 * table is not read at all).
 */
function applyFilter(store: Store, side: Side, q: Knex.QueryBuilder, f: PageFilter, nowMs: number): boolean {
  const statuses = f.statuses && f.statuses.length > 0 ? f.statuses : null;
  // Always true (NOT NULL): it lets PostgreSQL use the partial (enqueued_at, id) index, which
  // only a query that says so may use (migration 012: no lookup by id reads it).
  if (side.pending) q.whereNotNull('enqueued_at');
  if (side.pending) {
    const ready = !statuses || statuses.includes('READY');
    const running = !statuses || statuses.includes('RUNNING');
    if (!ready && !running) return false;
    if (ready && !running) whereReady(q, nowMs);
    if (running && !ready) whereRunning(q, nowMs);
  } else {
    const ok = !statuses || statuses.includes('SUCCESSFUL');
    const failed = !statuses || statuses.includes('FAILED');
    if (!ok && !failed) return false;
    if (ok && !failed) q.whereNull('failed_at');
    if (failed && !ok) q.whereNotNull('failed_at');
  }
  if (f.queues && f.queues.length > 0) {
    const named = f.queues.filter((x): x is string => x !== null);
    const none = f.queues.includes(null);
    q.where((b) => {
      if (named.length > 0) b.whereIn('queue', named);
      if (none) b.orWhereNull('queue');
    });
  }
  if (f.names && f.names.length > 0) q.whereIn('name', f.names as string[]);
  if (f.argsContain !== undefined && f.argsContain !== '') whereContains(q, store.dialect.name, 'args', f.argsContain);
  if (f.errorClass !== undefined) q.where('last_error_class', f.errorClass);
  if (f.range) {
    const c = side.column(f.range.field);
    if (c === null) return false;
    if (f.range.fromMs !== undefined) q.where(c, '>=', f.range.fromMs);
    if (f.range.toMs !== undefined) q.where(c, '<', f.range.toMs);
  }
  if (f.upToId !== undefined) q.where(side.id, '<=', f.upToId);
  return true;
}

/**
 * Adds "after (or before) the cursor row, in the page's order" for one table. Null sort values
 * (only a pending task's finish time) come after every value in both directions. False when no
 * row of this table lies that way.
 */
function applyKeyset(side: Side, q: Knex.QueryBuilder, c: Cursor): boolean {
  const col = side.column(c.k);
  const forward = c.w === 'after';
  const op = (c.d === 'asc') === forward ? '>' : '<';
  if (col === null) {
    // Every row of this table has a null value: nulls follow all values.
    if (c.v !== null) return forward;
    q.where(side.id, op, c.id);
    return true;
  }
  if (c.v === null) return !forward;
  const v = c.v;
  q.where((b) => b.where(col, op, v).orWhere((e) => e.where(col, v).where(side.id, op, c.id)));
  return true;
}

/** Order of display: by value (nulls last), then id, in the sort's direction. */
function compareRows(key: PageSortKey, direction: 'asc' | 'desc'): (a: PageRow, b: PageRow) => number {
  const sign = direction === 'asc' ? 1 : -1;
  const val = (r: PageRow): number | null => (key === 'priority' ? r.priority : r[key]);
  const idCmp = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  return (a, b) => {
    const av = val(a);
    const bv = val(b);
    if (av === null && bv !== null) return 1;
    if (av !== null && bv === null) return -1;
    if (av !== null && bv !== null && av !== bv) return sign * (av - bv);
    return sign * idCmp(a.id, b.id);
  };
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const bool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't';

function lastErrorOf(errors: unknown): PageRow['lastError'] {
  const list = readErrors(errors);
  if (!Array.isArray(list) || list.length === 0) return null;
  const last = list[list.length - 1]!;
  return { class: last.class, message: last.message };
}

function rowOf(side: Side, r: Record<string, unknown>, nowMs: number): PageRow {
  const head = String(r.args_head ?? '');
  const base = {
    name: String(r.name),
    verboseName: str(r.verbose_name),
    queue: str(r.queue),
    priority: Number(r.priority),
    attempts: Number(r.attempts),
    argsHead: head.slice(0, ARGS_HEAD),
    argsTruncated: head.length > ARGS_HEAD,
    enqueuedAt: Number(r.enqueued_at),
    runAt: Number(r.run_at),
    lastError: lastErrorOf(r.errors),
  };
  if (side.pending) {
    const status = pendingStatus({ lockedBy: str(r.locked_by), lockedUntil: num(r.locked_until) }, nowMs);
    const running = status === 'RUNNING';
    return {
      id: String(r.id),
      ...base,
      status,
      startedAt: running ? num(r.locked_at) : null,
      finishedAt: null,
      workerId: running ? str(r.locked_by) : null,
      cancelRequested: bool(r.cancel_requested),
    };
  }
  return {
    id: String(r.task_id),
    ...base,
    status: r.failed_at === null || r.failed_at === undefined ? 'SUCCESSFUL' : 'FAILED',
    startedAt: num(r.started_at),
    finishedAt: num(r.finished_at),
    workerId: str(r.worker_id),
    cancelRequested: false,
  };
}

function selectColumns(store: Store, side: Side, q: Knex.QueryBuilder): void {
  const common = ['name', 'verbose_name', 'queue', 'priority', 'attempts', 'enqueued_at', 'run_at', 'errors'];
  // One character more than shown tells whether the text was cut; substr is portable.
  q.select(store.knex.raw('substr(args, 1, ?) AS args_head', [ARGS_HEAD + 1]));
  if (side.pending) q.select('id', ...common, 'locked_by', 'locked_until', 'locked_at', 'cancel_requested');
  else q.select('task_id', ...common, 'started_at', 'finished_at', 'failed_at', 'worker_id');
}

/** Up to `limit` rows of one table from the cursor on (or the start), in query order. */
async function readSide(store: Store, side: Side, f: PageFilter, sort: PageSort, cursor: Cursor | null, limit: number, nowMs: number): Promise<PageRow[]> {
  const q = store.knex(side.table);
  if (!applyFilter(store, side, q, f, nowMs)) return [];
  if (cursor && !applyKeyset(side, q, cursor)) return [];
  const backward = cursor?.w === 'before';
  const dir = (sort.direction === 'asc') !== backward ? 'asc' : 'desc';
  const col = side.column(sort.key);
  selectColumns(store, side, q);
  const order: Array<{ column: string; order: 'asc' | 'desc' }> = [];
  if (col !== null) order.push({ column: col, order: dir });
  order.push({ column: side.id, order: dir });
  const rows = (await store.retrying(() => q.orderBy(order).limit(limit))) as Record<string, unknown>[];
  return rows.map((r) => rowOf(side, r, nowMs));
}

/** One page of tasks matching `filter`, in `sort` order, from `cursorText` (null: the first page). */
export async function taskPage(store: Store, req: { filter: PageFilter; sort: PageSort; limit: number; cursor: string | null }, nowMs: number): Promise<PageResult> {
  const cursor = req.cursor === null ? null : decodeCursor(req.cursor, req.sort);
  const cmp = compareRows(req.sort.key, req.sort.direction);
  const lists = await Promise.all(sides(store).map((s) => readSide(store, s, req.filter, req.sort, cursor, req.limit + 1, nowMs)));
  const backward = cursor?.w === 'before';
  // Merged in the direction read (away from the cursor), cut to one more than a page.
  const merged = lists.flat().sort(backward ? (a, b) => cmp(b, a) : cmp);
  const more = merged.length > req.limit;
  const taken = merged.slice(0, req.limit);
  const rows = backward ? taken.reverse() : taken;
  const make = (r: PageRow, w: 'after' | 'before') =>
    encodeCursor({ k: req.sort.key, d: req.sort.direction, v: req.sort.key === 'priority' ? r.priority : r[req.sort.key], id: r.id, w });
  const first = rows[0];
  const last = rows[rows.length - 1];
  if (!first || !last) return { rows, next: null, prev: null };
  return {
    rows,
    next: backward ? make(last, 'after') : more ? make(last, 'after') : null,
    prev: cursor === null ? null : backward ? (more ? make(first, 'before') : null) : make(first, 'before'),
  };
}

/** How many tasks match `filter`, both tables. */
export async function countTaskMatches(store: Store, filter: PageFilter, nowMs: number): Promise<number> {
  let total = 0;
  for (const side of sides(store)) {
    const q = store.knex(side.table);
    if (!applyFilter(store, side, q, filter, nowMs)) continue;
    const [row] = (await store.retrying(() => q.count({ n: '*' }))) as Array<{ n: unknown }>;
    total += Number(row?.n ?? 0);
  }
  return total;
}

/** The highest task id in either table now (a snapshot bound for actions on a filter), or null. */
export async function maxTaskId(store: Store): Promise<string | null> {
  let best: string | null = null;
  for (const side of sides(store)) {
    const [row] = (await store.retrying(() => store.knex(side.table).max({ m: side.id }))) as Array<{ m: unknown }>;
    const m = str(row?.m);
    if (m !== null && (best === null || m.length > best.length || (m.length === best.length && m > best))) best = m;
  }
  return best;
}

/** The ids of tasks matching `filter` after `afterId`, in id order, at most `limit` (for bulk actions). */
export async function matchingIds(store: Store, filter: PageFilter, afterId: string | null, limit: number, nowMs: number): Promise<string[]> {
  const ids: string[] = [];
  for (const side of sides(store)) {
    const q = store.knex(side.table).select(side.id);
    if (!applyFilter(store, side, q, filter, nowMs)) continue;
    if (afterId !== null) q.where(side.id, '>', afterId);
    const rows = (await store.retrying(() => q.orderBy(side.id).limit(limit))) as Array<Record<string, unknown>>;
    ids.push(...rows.map((r) => String(r[side.id])));
  }
  const idCmp = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  return ids.sort(idCmp).slice(0, limit);
}

/**
 * The task query of the Tasks page, the JSON API and the action forms: parsed from URL
 * parameters (or a form body) into the source's TaskFilter/TaskSort, validated with messages that
 * name the value and what was expected, and written back to parameters for links.
 *
 * Parameters: `status` (ready,running,successful,failed; any case; repeated or comma-separated),
 * `queue` and `name` (comma-separated or repeated; `-` is "no queue", as the CLI's tables write
 * it), `q` (text in the arguments), `error` (error class), `time` with `from`/`to` (ISO times; a
 * time without a zone is UTC), `sort`, `dir`, `limit` (1 to 500) and `cursor`.
 */
import { ValidationError } from '../errors.js';
import { STATUSES, type Status } from '../types.js';
import type { TaskAction, TaskFilter, TaskSort, TaskSortKey, TaskTimeField } from './source.js';

export interface TaskQuery {
  filter: TaskFilter;
  sort: TaskSort;
  limit: number;
  cursor: string | null;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
export const DEFAULT_SORT: TaskSort = { key: 'enqueuedAt', direction: 'desc' };
const TIME_FIELDS: readonly TaskTimeField[] = ['enqueuedAt', 'runAt', 'finishedAt'];
const SORT_KEYS: readonly TaskSortKey[] = ['enqueuedAt', 'runAt', 'finishedAt', 'priority'];
const MAX_TEXT = 200;
const MAX_LIST = 50;
// Cursors are opaque, but they come back from a URL: bound them and keep them to URL-safe text.
const CURSOR_RE = /^[A-Za-z0-9_\-.~:=]{1,512}$/;

/** The parameters this module reads; anything else in a URL is ignored. */
export const QUERY_PARAMS = ['status', 'queue', 'name', 'q', 'error', 'time', 'from', 'to', 'sort', 'dir', 'limit', 'cursor'];

const bad = (message: string): never => {
  throw new ValidationError(message);
};

/** Every value of a parameter, repeated or comma-separated, trimmed, empties dropped. */
function list(params: URLSearchParams, key: string): string[] {
  const out = params
    .getAll(key)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (out.length > MAX_LIST) bad(`too many values for ${key}: ${out.length} (at most ${MAX_LIST})`);
  for (const v of out) if (v.length > MAX_TEXT) bad(`${key} value too long: ${v.length} characters (at most ${MAX_TEXT})`);
  return [...new Set(out)];
}

function single(params: URLSearchParams, key: string): string | undefined {
  const v = params.get(key)?.trim();
  if (v === undefined || v === '') return undefined;
  if (v.length > MAX_TEXT) bad(`${key} too long: ${v.length} characters (at most ${MAX_TEXT})`);
  return v;
}

export function parseStatuses(values: string[]): Status[] {
  return values.map((v) => {
    const s = v.toUpperCase() as Status;
    if (!STATUSES.includes(s)) bad(`unknown status '${v}': expected ready, running, successful or failed`);
    return s;
  });
}

/**
 * An ISO 8601 time; a date or time without a zone is UTC (as the CLI's `--since`), because the
 * browser's datetime-local field sends none and the dashboard shows every time in UTC.
 */
export function parseTime(key: string, v: string): Date {
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?))?(Z|[+-]\d{2}:\d{2})?$/.exec(v);
  if (!m) return bad(`${key} is not a time: '${v}' (expected ISO 8601, e.g. 2030-01-02T03:04:05Z; a time without a zone is UTC)`);
  const d = new Date(`${m[1]}T${m[2] ?? '00:00'}${m[3] ?? 'Z'}`);
  // Date() rolls 2030-02-31 over into March: a day that does not read back is a typo.
  const day = new Date(`${m[1]}T00:00Z`);
  if (Number.isNaN(d.getTime()) || Number.isNaN(day.getTime()) || !day.toISOString().startsWith(m[1])) {
    return bad(`${key} is not a valid date: '${v}'`);
  }
  return d;
}

export function parseLimit(v: string | undefined): number {
  if (v === undefined) return DEFAULT_LIMIT;
  if (!/^\d{1,6}$/.test(v)) return bad(`limit must be a whole number from 1 to ${MAX_LIMIT}, not '${v}'`);
  const n = Number(v);
  if (n < 1 || n > MAX_LIMIT) bad(`limit must be from 1 to ${MAX_LIMIT}, not ${n}`);
  return n;
}

/** The filter part alone (actions and counts need no sort or page). */
export function parseFilter(params: URLSearchParams): TaskFilter {
  const filter: TaskFilter = {};
  const statuses = parseStatuses(list(params, 'status'));
  if (statuses.length) filter.statuses = statuses;
  const queues = list(params, 'queue').map((q) => (q === '-' ? null : q));
  if (queues.length) filter.queues = queues;
  const names = list(params, 'name');
  if (names.length) filter.names = names;
  const q = single(params, 'q');
  if (q !== undefined) filter.argsContain = q;
  const error = single(params, 'error');
  if (error !== undefined) filter.errorClass = error;
  const from = single(params, 'from');
  const to = single(params, 'to');
  const time = single(params, 'time');
  if (time !== undefined && !TIME_FIELDS.includes(time as TaskTimeField)) {
    bad(`unknown time field '${time}': expected ${TIME_FIELDS.join(', ')}`);
  }
  if (from !== undefined || to !== undefined) {
    const range: NonNullable<TaskFilter['range']> = { field: (time as TaskTimeField | undefined) ?? 'enqueuedAt' };
    if (from !== undefined) range.from = parseTime('from', from);
    if (to !== undefined) range.to = parseTime('to', to);
    if (range.from && range.to && range.from.getTime() > range.to.getTime()) {
      bad(`from (${range.from.toISOString()}) is after to (${range.to.toISOString()})`);
    }
    filter.range = range;
  }
  return filter;
}

export function parseTaskQuery(params: URLSearchParams): TaskQuery {
  const filter = parseFilter(params);
  const key = single(params, 'sort') ?? DEFAULT_SORT.key;
  if (!SORT_KEYS.includes(key as TaskSortKey)) bad(`unknown sort '${key}': expected ${SORT_KEYS.join(', ')}`);
  const dir = single(params, 'dir') ?? DEFAULT_SORT.direction;
  if (dir !== 'asc' && dir !== 'desc') bad(`unknown sort direction '${dir}': expected asc or desc`);
  const limit = parseLimit(single(params, 'limit'));
  const cursor = params.get('cursor') || null;
  if (cursor !== null && !CURSOR_RE.test(cursor)) bad('bad cursor: it is not one this dashboard made (open the first page again)');
  return { filter, sort: { key: key as TaskSortKey, direction: dir as 'asc' | 'desc' }, limit, cursor };
}

/** The parameters of a filter, in a fixed order (links and hidden form fields). */
export function filterParams(filter: TaskFilter): URLSearchParams {
  const p = new URLSearchParams();
  if (filter.statuses?.length) p.set('status', filter.statuses.map((s) => s.toLowerCase()).join(','));
  if (filter.queues?.length) p.set('queue', filter.queues.map((q) => q ?? '-').join(','));
  if (filter.names?.length) p.set('name', filter.names.join(','));
  if (filter.argsContain !== undefined) p.set('q', filter.argsContain);
  if (filter.errorClass !== undefined) p.set('error', filter.errorClass);
  if (filter.range) {
    p.set('time', filter.range.field);
    if (filter.range.from) p.set('from', filter.range.from.toISOString());
    if (filter.range.to) p.set('to', filter.range.to.toISOString());
  }
  return p;
}

/** A whole query's parameters; defaults are left out so URLs stay short. */
export function queryParams(query: TaskQuery, cursor: string | null = query.cursor): URLSearchParams {
  const p = filterParams(query.filter);
  if (query.sort.key !== DEFAULT_SORT.key) p.set('sort', query.sort.key);
  if (query.sort.direction !== DEFAULT_SORT.direction) p.set('dir', query.sort.direction);
  if (query.limit !== DEFAULT_LIMIT) p.set('limit', String(query.limit));
  if (cursor) p.set('cursor', cursor);
  return p;
}

/** The statuses each action can change; an action on a filter is narrowed to them. */
export const ACTION_STATUSES: Record<TaskAction, readonly Status[]> = {
  retry: ['FAILED'],
  cancel: ['READY', 'RUNNING'],
  delete: ['READY', 'SUCCESSFUL', 'FAILED'],
  runNow: ['READY'],
};

/**
 * The filter an action on "all matching" really runs on: the user's filter with its statuses
 * narrowed to those the action applies to, so the confirmation count is the number of tasks the
 * action will try to change. Null when the narrowing leaves nothing (e.g. retry on ready tasks).
 */
export function narrowForAction(action: TaskAction, filter: TaskFilter): TaskFilter | null {
  const allowed = ACTION_STATUSES[action];
  const statuses = filter.statuses?.length ? filter.statuses.filter((s) => allowed.includes(s)) : [...allowed];
  if (statuses.length === 0) return null;
  return { ...filter, statuses };
}

/** A filter in words, for the confirmation step ("status failed, name sendEmail"). */
export function describeFilter(filter: TaskFilter): string {
  const parts: string[] = [];
  if (filter.statuses?.length) parts.push(`status ${filter.statuses.map((s) => s.toLowerCase()).join(' or ')}`);
  if (filter.queues?.length) parts.push(`queue ${filter.queues.map((q) => q ?? '- (none)').join(' or ')}`);
  if (filter.names?.length) parts.push(`name ${filter.names.join(' or ')}`);
  if (filter.argsContain !== undefined) parts.push(`arguments containing "${filter.argsContain}"`);
  if (filter.errorClass !== undefined) parts.push(`last error ${filter.errorClass}`);
  if (filter.range) {
    const { field, from, to } = filter.range;
    if (from) parts.push(`${field} at or after ${from.toISOString()}`);
    if (to) parts.push(`${field} before ${to.toISOString()}`);
  }
  return parts.length ? parts.join('; ') : 'every task';
}

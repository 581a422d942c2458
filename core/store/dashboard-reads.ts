/**
 * The dashboard's figures beyond `bgtasks stats` (admin.ts): tasks finished per minute, failures
 * grouped by task name and error class, the names and queues for the filter form, and a task's
 * neighbours in its repeat or cron chain. Each reads an index range or a bounded list.
 */
import type { Store } from './store.js';

const MINUTE_MS = 60_000;

export interface MinuteCounts {
  /** Start of the minute, epoch ms. */
  minute: number;
  succeeded: number;
  failed: number;
}

/**
 * Tasks finished in each whole minute from `fromMs` (rounded down to its minute) to `nowMs`,
 * succeeded and failed for good: one range read of the finish-time index, grouped in SQL.
 * Minutes without any are not returned.
 */
export async function finishedPerMinute(store: Store, fromMs: number, nowMs: number): Promise<MinuteCounts[]> {
  const start = Math.floor(fromMs / MINUTE_MS) * MINUTE_MS;
  const k = store.knex;
  // `x - x % 60000` is integer arithmetic on every database (no FLOOR of a decimal on MySQL). The
  // constant is written into the SQL: PostgreSQL matches the GROUP BY to the select list by text,
  // and two bind parameters are two different expressions to it.
  const minuteOf = `finished_at - finished_at % ${MINUTE_MS}`;
  const rows = (await store.retrying(() =>
    k(store.tables.completed)
      .select(k.raw(`${minuteOf} AS m`))
      .select(k.raw('SUM(CASE WHEN failed_at IS NULL THEN 1 ELSE 0 END) AS ok'))
      .select(k.raw('SUM(CASE WHEN failed_at IS NULL THEN 0 ELSE 1 END) AS bad'))
      .where('finished_at', '>=', start)
      .where('finished_at', '<=', nowMs)
      .groupByRaw(minuteOf),
  )) as Array<{ m: unknown; ok: unknown; bad: unknown }>;
  return rows.map((r) => ({ minute: Number(r.m), succeeded: Number(r.ok), failed: Number(r.bad) })).sort((a, b) => a.minute - b.minute);
}

export interface FailureGroupRow {
  name: string;
  /** '' for failures without a recorded class. */
  errorClass: string;
  count: number;
  lastFailedAt: number;
  sampleMessage: string;
  sampleTaskId: string;
}

/**
 * Failed tasks (at or after `sinceMs`; null: all kept) grouped by task name and the class of the
 * last error, largest groups first, at most `limit`; each with its latest failure's message.
 */
export async function failureGroups(store: Store, sinceMs: number | null, limit: number): Promise<FailureGroupRow[]> {
  const { completed } = store.tables;
  const q = store
    .knex(completed)
    .select('name', 'last_error_class')
    .count({ n: '*' })
    .max({ last: 'failed_at' })
    .whereNotNull('failed_at')
    .groupBy('name', 'last_error_class')
    .orderBy([{ column: 'n', order: 'desc' }, { column: 'name' }])
    .limit(limit);
  if (sinceMs !== null) q.where('failed_at', '>=', sinceMs);
  const groups = (await store.retrying(() => q)) as Array<{ name: string; last_error_class: string | null; n: unknown; last: unknown }>;
  const out: FailureGroupRow[] = [];
  for (const g of groups) {
    const cls = g.last_error_class;
    const sq = store.knex(completed).select('task_id', 'errors').where('name', g.name).whereNotNull('failed_at').where('failed_at', Number(g.last));
    if (cls === null) sq.whereNull('last_error_class');
    else sq.where('last_error_class', cls);
    const sample = (await store.retrying(() => sq.orderBy('task_id', 'desc').first())) as { task_id: unknown; errors: unknown } | undefined;
    let message = '';
    if (sample && typeof sample.errors === 'string') {
      try {
        const list = JSON.parse(sample.errors) as Array<{ message?: unknown }>;
        const last = Array.isArray(list) ? list[list.length - 1] : undefined;
        if (last && typeof last.message === 'string') message = last.message;
      } catch {
        // An unreadable history shows no sample message.
      }
    }
    out.push({ name: g.name, errorClass: cls ?? '', count: Number(g.n), lastFailedAt: Number(g.last), sampleMessage: message, sampleTaskId: sample ? String(sample.task_id) : '' });
  }
  return out;
}

/** Distinct task names and queues in both tables (at most `limit` of each), for suggestions. */
export async function namesAndQueues(store: Store, limit: number): Promise<{ names: string[]; queues: (string | null)[] }> {
  const names = new Set<string>();
  const queues = new Set<string | null>();
  for (const table of [store.tables.tasks, store.tables.completed]) {
    const n = (await store.retrying(() => store.knex(table).distinct('name').orderBy('name').limit(limit))) as Array<{ name: string }>;
    for (const r of n) names.add(r.name);
    const q = (await store.retrying(() => store.knex(table).distinct('queue').orderBy('queue').limit(limit))) as Array<{ queue: string | null }>;
    for (const r of q) queues.add(r.queue ?? null);
  }
  const sorted = [...names].sort();
  const qs = [...queues].sort((a, b) => (a === null ? -1 : b === null ? 1 : a < b ? -1 : a > b ? 1 : 0));
  return { names: sorted.slice(0, limit), queues: qs.slice(0, limit + 1) };
}

/** What a chain lookup needs of a task. */
export interface ChainKey {
  id: string;
  name: string;
  hash: string;
  repeating: boolean;
  recurringKey: string | null;
}

/**
 * The tasks before and after `t` in its chain: the same cron schedule (task name and schedule
 * key), or for a repeating task the same call (dedupe hash) among repeating tasks. Read from
 * both tables through the hash index (or the id range of the name); null where there is none.
 */
export async function chainNeighbours(store: Store, t: ChainKey): Promise<{ predecessorId: string | null; successorId: string | null }> {
  if (!t.repeating && t.recurringKey === null) return { predecessorId: null, successorId: null };
  const find = async (op: '<' | '>'): Promise<string | null> => {
    let best: string | null = null;
    for (const [table, id] of [
      [store.tables.tasks, 'id'],
      [store.tables.completed, 'task_id'],
    ] as const) {
      const q = store.knex(table).select(id).where(id, op, t.id);
      if (t.recurringKey !== null) q.where('name', t.name).where('recurring_key', t.recurringKey);
      else q.where('hash', t.hash).where((b) => b.where('repeat_every_ms', '>', 0).orWhereNotNull('repeat_cron'));
      const row = (await store.retrying(() => q.orderBy(id, op === '<' ? 'desc' : 'asc').first())) as Record<string, unknown> | undefined;
      if (!row) continue;
      const v = String(row[id]);
      const better = best === null || (op === '<' ? Number(v) > Number(best) : Number(v) < Number(best));
      if (better) best = v;
    }
    return best;
  };
  return { predecessorId: await find('<'), successorId: await find('>') };
}

/** A cron schedule's next pending task. */
export interface SchedulePending {
  id: string;
  runAt: number;
  lockedBy: string | null;
  lockedUntil: number | null;
}

/** The earliest pending task (by run time) of each cron schedule, keyed `name\0key`. */
export async function nextPendingBySchedule(store: Store): Promise<Map<string, SchedulePending>> {
  const rows = (await store.retrying(() =>
    store
      .knex(store.tables.tasks)
      .select('id', 'name', 'recurring_key', 'run_at', 'locked_by', 'locked_until')
      .whereNotNull('recurring_key')
      .orderBy([{ column: 'run_at' }, { column: 'id' }])
      .limit(10_000),
  )) as Array<Record<string, unknown>>;
  const out = new Map<string, SchedulePending>();
  for (const r of rows) {
    const key = `${String(r.name)}\u0000${String(r.recurring_key)}`;
    if (out.has(key)) continue;
    const lu = r.locked_until;
    out.set(key, { id: String(r.id), runAt: Number(r.run_at), lockedBy: r.locked_by === null || r.locked_by === undefined ? null : String(r.locked_by), lockedUntil: lu === null || lu === undefined ? null : Number(lu) });
  }
  return out;
}

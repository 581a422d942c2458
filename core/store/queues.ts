/**
 * The queues table: a queue paused or given limits has a row; any other queue runs unlimited.
 * These verbs are the one implementation behind `pauseQueue()`/`resumeQueue()`/`setQueueLimits()`,
 * `bgtasks queues …` and the dashboard. Each change is one upsert, and on PostgreSQL a
 * notification on the tasks channel tells listening workers to read the queues again at once.
 */
import type { QueueLimits, RateLimit } from '../policy/flow.js';
import type { Status } from '../types.js';
import { collectStats } from './admin.js';
import { lockFlow } from './flow-clock.js';
import type { Store } from './store.js';

/** A queue's row (camelCase). */
export interface QueueRecord extends QueueLimits {
  name: string;
  updatedAt: number;
  updatedBy: string | null;
}

const bool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't';

function recordOf(r: Record<string, unknown>): QueueRecord {
  const rate = r.rate_limit === null || r.rate_limit === undefined ? null : Number(r.rate_limit);
  return {
    name: String(r.name),
    paused: bool(r.paused),
    concurrency: r.concurrency === null || r.concurrency === undefined ? null : Number(r.concurrency),
    rateLimit: rate === null ? null : { limit: rate, period: Number(r.rate_period_ms) / 1000, ...(bool(r.rate_per_key) ? { perKey: true } : {}) },
    updatedAt: Number(r.updated_at),
    updatedBy: r.updated_by === null || r.updated_by === undefined ? null : String(r.updated_by),
  };
}

/** Every queue that has a row, by name. */
export async function queueRecords(store: Store): Promise<QueueRecord[]> {
  const rows = (await store.retrying(() => store.knex(store.tables.queues).select('*').orderBy('name'))) as Record<string, unknown>[];
  return rows.map(recordOf);
}

/** Workers listening on PostgreSQL read the queues again now (elsewhere: at their next poll). */
async function announce(store: Store): Promise<void> {
  await store.dialect.notifyQueuesChanged?.(store.knex, store.tables);
}

async function upsert(store: Store, name: string, values: Record<string, unknown>, by: string | null, nowMs: number): Promise<void> {
  const row = { name, ...values, updated_at: nowMs, updated_by: by };
  await store.retrying(() =>
    store
      .knex(store.tables.queues)
      .insert(row)
      .onConflict('name')
      .merge([...Object.keys(values), 'updated_at', 'updated_by']),
  );
  await announce(store);
}

/** Pauses a queue (known or not yet used): no worker claims its tasks until it is resumed. Returns false if it was paused already. */
export async function pauseQueue(store: Store, name: string, by: string | null, nowMs: number): Promise<boolean> {
  const before = (await queueRecords(store)).find((q) => q.name === name);
  await upsert(store, name, { paused: true }, by, nowMs);
  return !before?.paused;
}

/** Resumes a paused queue. Returns false if it was not paused. */
export async function resumeQueue(store: Store, name: string, by: string | null, nowMs: number): Promise<boolean> {
  const n = await store.retrying(() =>
    store.knex(store.tables.queues).where('name', name).where('paused', true).update({ paused: false, updated_at: nowMs, updated_by: by }),
  );
  if (n > 0) await announce(store);
  return n > 0;
}

/** Sets a queue's limits; `null` removes one, `undefined` leaves it as it is. */
export async function setQueueLimits(
  store: Store,
  name: string,
  limits: { concurrency?: number | null; rateLimit?: RateLimit | null },
  by: string | null,
  nowMs: number,
): Promise<void> {
  const values: Record<string, unknown> = {};
  if (limits.concurrency !== undefined) values.concurrency = limits.concurrency;
  if (limits.rateLimit !== undefined) {
    values.rate_limit = limits.rateLimit?.limit ?? null;
    values.rate_period_ms = limits.rateLimit ? Math.round(limits.rateLimit.period * 1000) : null;
    values.rate_per_key = limits.rateLimit?.perKey ?? false;
  }
  if (Object.keys(values).length === 0) return;
  await upsert(store, name, values, by, nowMs);
}

/** A queue: its state and limits, and its tasks by status. `name` null is "no queue". */
export interface QueueInfo {
  name: string | null;
  paused: boolean;
  concurrency: number | null;
  rateLimit: RateLimit | null;
  counts: Record<Status, number>;
}

/** Every queue that holds tasks or has a row (paused or limited), with its counts; no queue first. */
export async function queueOverview(store: Store, nowMs: number): Promise<QueueInfo[]> {
  const stats = await collectStats(store, nowMs);
  const records = await queueRecords(store);
  const byName = new Map<string | null, QueueInfo>();
  for (const q of stats.queues) {
    byName.set(q.queue, { name: q.queue, paused: false, concurrency: null, rateLimit: null, counts: { READY: q.READY, RUNNING: q.RUNNING, SUCCESSFUL: q.SUCCESSFUL, FAILED: q.FAILED } });
  }
  for (const r of records) {
    const q = byName.get(r.name) ?? { name: r.name, paused: false, concurrency: null, rateLimit: null, counts: { READY: 0, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 } };
    byName.set(r.name, { ...q, paused: r.paused, concurrency: r.concurrency, rateLimit: r.rateLimit });
  }
  return [...byName.values()].sort((a, b) => (a.name === null ? -1 : b.name === null ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Deletes recorded starts older than the longest rate-limit period in use: the queues' and those
 * the task definitions of the registered workers declare (a start older than every window counts
 * for none). Returns how many were deleted. It holds the flow lock and moves the flow time to
 * `nowMs` (store/flow-clock.ts): a claim whose worker read its clock before then counts its window
 * from there, so none of the starts deleted here belongs to it.
 */
export async function pruneRateStarts(store: Store, nowMs: number): Promise<number> {
  const [queuesMax] = (await store.retrying(() => store.knex(store.tables.queues).max({ ms: 'rate_period_ms' }))) as Array<{ ms: unknown }>;
  let longest = queuesMax?.ms === null || queuesMax?.ms === undefined ? 0 : Number(queuesMax.ms);
  const workers = (await store.retrying(() => store.knex(store.tables.workers).select('limits'))) as Array<{ limits: unknown }>;
  for (const w of workers) {
    let limits: Record<string, { rateLimit?: { period?: unknown } | null }> = {};
    try {
      limits = typeof w.limits === 'string' ? (JSON.parse(w.limits) as typeof limits) : {};
    } catch {
      continue;
    }
    for (const l of Object.values(limits ?? {})) {
      const period = Number(l?.rateLimit?.period);
      if (Number.isFinite(period)) longest = Math.max(longest, Math.round(period * 1000));
    }
  }
  return store.tx(async (trx) => {
    await lockFlow(trx, store.tables, nowMs);
    return trx(store.tables.rateStarts).where('started_at', '<=', nowMs - longest).del();
  });
}

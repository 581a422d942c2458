/**
 * Pruning results: deletes finished tasks (rows of the completed table) older than a retention,
 * in bounded batches so that workers keep claiming and settling while millions of rows go. The
 * pending table is never read for deletion and never written.
 *
 * Each batch is one DELETE over a primary-key range that holds at most `batchSize` matching rows,
 * committed on its own: no long transaction holds locks (or SQLite's write lock) for the whole
 * prune. The same pass removes dedupe lock rows (`hash:…`, `queue:…`) that no pending task needs.
 */
import type { Knex } from 'knex';
import { ValidationError } from '../errors.js';
import type { Store } from './store.js';

const DAY_MS = 86_400_000;
/** Rows per DELETE by default: a few milliseconds of work on every database. */
export const PRUNE_BATCH_DEFAULT = 2000;
export const PRUNE_BATCH_MAX = 10_000;
/** Lock keys examined per round: keeps every IN (…) list far below bind-parameter limits. */
const LOCK_BATCH = 500;

export interface PruneOptions {
  /** Successful tasks (and failed ones, unless `failedDays` is given) finished more than this many days ago. 0: all. */
  days: number;
  /** Retention of failed tasks, in days; 0 prunes every failed task. Default: `days`. */
  failedDays?: number | null;
  /** Only tasks of these queues. Default: every queue, and tasks without one. */
  queues?: readonly string[] | null;
  /** The current time (epoch ms), from the injected clock. */
  nowMs: number;
  /** Rows deleted per statement. Default 2000. */
  batchSize?: number;
  /** Count what would be deleted; delete nothing. */
  dryRun?: boolean;
  /** Called after each batch with the rows deleted so far and the count found at the start. */
  onProgress?: (deleted: number, total: number) => void;
}

export interface PruneReport {
  dryRun: boolean;
  /** Task results deleted (or that would be, in a dry run). */
  tasks: number;
  /** Unused dedupe lock rows deleted (or that would be). */
  locks: number;
  /** Successful tasks finished before this time were pruned (null: all of them). */
  cutoff: Date | null;
  /** Failed tasks finished before this time were pruned (null: all of them). */
  failedCutoff: Date | null;
  /** DELETE statements run on the completed table. */
  batches: number;
}

function checkDays(v: unknown, label: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ValidationError(`Invalid ${label}: ${String(v)} — expected a number of days >= 0`);
  }
}

/** Epoch ms before which a result is old enough, or null when every result is (0 days). */
function cutoffOf(days: number, nowMs: number): number | null {
  return days === 0 ? null : nowMs - Math.round(days * DAY_MS);
}

interface Criteria {
  cutoff: number | null;
  failedCutoff: number | null;
  queues: readonly string[] | null;
}

/** Restricts a completed-table query to the results the criteria make old enough. */
function applyCriteria(q: Knex.QueryBuilder, c: Criteria): Knex.QueryBuilder {
  q.where((b) => {
    b.where((ok) => {
      ok.whereNull('failed_at');
      if (c.cutoff !== null) ok.where('finished_at', '<', c.cutoff);
    }).orWhere((failed) => {
      failed.whereNotNull('failed_at');
      if (c.failedCutoff !== null) failed.where('finished_at', '<', c.failedCutoff);
    });
  });
  if (c.queues) q.whereIn('queue', c.queues as string[]);
  return q;
}

/** Deletes (or counts) old task results and unused lock rows. */
export async function pruneResults(store: Store, o: PruneOptions): Promise<PruneReport> {
  checkDays(o.days, 'days');
  if (o.failedDays !== undefined && o.failedDays !== null) checkDays(o.failedDays, 'failedDays');
  const batchSize = o.batchSize ?? PRUNE_BATCH_DEFAULT;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > PRUNE_BATCH_MAX) {
    throw new ValidationError(`Invalid batchSize: ${String(batchSize)} — expected an integer from 1 to ${PRUNE_BATCH_MAX}`);
  }
  if (o.queues && o.queues.length === 0) throw new ValidationError('Invalid queues: an empty list — omit it for every queue');
  const c: Criteria = {
    cutoff: cutoffOf(o.days, o.nowMs),
    failedCutoff: cutoffOf(o.failedDays ?? o.days, o.nowMs),
    queues: o.queues ?? null,
  };
  const table = store.tables.completed;
  const [row] = (await store.retrying(() => applyCriteria(store.knex(table).count({ n: '*' }), c))) as Array<{ n: unknown }>;
  const total = Number(row?.n ?? 0);
  const report: PruneReport = {
    dryRun: o.dryRun === true,
    tasks: total,
    locks: 0,
    cutoff: c.cutoff === null ? null : new Date(c.cutoff),
    failedCutoff: c.failedCutoff === null ? null : new Date(c.failedCutoff),
    batches: 0,
  };
  const lockCutoff = c.cutoff ?? o.nowMs;
  if (report.dryRun) {
    report.locks = await pruneLocks(store, lockCutoff, c.queues, true);
    return report;
  }

  let deleted = 0;
  let after: Knex.Value | null = null;
  for (;;) {
    // The ids of the next batch, in key order, resuming after the previous one: one pass over
    // the primary key, however many rows there are.
    const q = applyCriteria(store.knex(table).select('task_id'), c).orderBy('task_id').limit(batchSize);
    if (after !== null) q.where('task_id', '>', after);
    const ids = ((await store.retrying(() => q)) as Array<{ task_id: unknown }>).map((r) => r.task_id as Knex.Value);
    if (ids.length === 0) break;
    const lo = ids[0]!;
    const hi = ids[ids.length - 1]!;
    // Deleting the key range (not an IN list) keeps the statement small; the criteria are
    // repeated, so a row in the range that is not old enough stays.
    const n = await store.retrying(() =>
      applyCriteria(store.knex(table).where('task_id', '>=', lo).where('task_id', '<=', hi), c).del(),
    );
    deleted += n;
    report.batches++;
    o.onProgress?.(deleted, total);
    after = hi;
    if (ids.length < batchSize) break;
  }
  report.tasks = deleted;
  report.locks = await pruneLocks(store, lockCutoff, c.queues, false);
  return report;
}

/**
 * Deletes (or counts, in a dry run) lock rows last taken before `cutoffMs` whose key no pending
 * task uses: `hash:<sha1>` rows of hashes no pending task has and `queue:<name>` rows of queues
 * no pending task is in, and every `idem:<sha1>` row (an idempotency key's lock: the key itself
 * lives in the task rows, so its lock is needed only while a transaction holds it). Keys of
 * other kinds are left alone. With `queues`, only those queues'
 * rows are considered (a hash row belongs to no queue).
 *
 * A lock row only serialises enqueues while a transaction holds it, so deleting one is always
 * safe: the next enqueue that needs it creates it again. The delete repeats the age test, so a
 * row taken again meanwhile (its `locked_at` renewed) stays.
 */
export async function pruneLocks(store: Store, cutoffMs: number, queues: readonly string[] | null, dryRun: boolean): Promise<number> {
  const { locks, tasks } = store.tables;
  let count = 0;
  let after: string | null = null;
  for (;;) {
    const q = store.knex(locks).select('key').where('locked_at', '<', cutoffMs).orderBy('key').limit(LOCK_BATCH);
    if (after !== null) q.where('key', '>', after);
    const keys = ((await store.retrying(() => q)) as Array<{ key: string }>).map((r) => r.key);
    if (keys.length === 0) break;
    after = keys[keys.length - 1]!;
    const hashes = queues ? [] : keys.filter((k) => k.startsWith('hash:')).map((k) => k.slice(5));
    const queueNames = keys
      .filter((k) => k.startsWith('queue:'))
      .map((k) => k.slice(6))
      .filter((name) => !queues || queues.includes(name));
    const usedHashes = new Set<string>();
    const usedQueues = new Set<string>();
    if (hashes.length > 0) {
      const rows = (await store.retrying(() => store.knex(tasks).distinct('hash').whereIn('hash', hashes))) as Array<{ hash: string }>;
      for (const r of rows) usedHashes.add(r.hash);
    }
    if (queueNames.length > 0) {
      const rows = (await store.retrying(() => store.knex(tasks).distinct('queue').whereIn('queue', queueNames))) as Array<{ queue: string }>;
      for (const r of rows) usedQueues.add(r.queue);
    }
    const unused = [
      ...(queues ? [] : keys.filter((k) => k.startsWith('idem:'))),
      ...hashes.filter((h) => !usedHashes.has(h)).map((h) => `hash:${h}`),
      ...queueNames.filter((n) => !usedQueues.has(n)).map((n) => `queue:${n}`),
    ];
    if (unused.length > 0) {
      count += dryRun
        ? unused.length
        : await store.retrying(() => store.knex(locks).whereIn('key', unused).where('locked_at', '<', cutoffMs).del());
    }
    if (keys.length < LOCK_BATCH) break;
  }
  return count;
}

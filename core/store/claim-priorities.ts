/**
 * The plain claim's reads split by priority (PostgreSQL, MySQL/MariaDB: dialect.seeksPerPriority).
 *
 * The claim index orders unlocked tasks by priority, then run time. A read of a range of
 * priorities can bound the run time (`run_at <= now`) only within one priority: across several,
 * the not-due tasks of each lie between its due ones and the next priority's, inside the range.
 * So a claim beside many not-due tasks of a priority that ranks above the due work walked them
 * all. Beside a million (the scale bench's "higher priority" case): MariaDB 610 ms a claim, its
 * cursor's backward check of the range above fetching every row (no index condition pushdown on
 * a backward read); PostgreSQL 26 ms. Split: about 2 and 2-3 ms.
 *
 * Split into one range per priority, each is bounded by `now` and its due tasks are one seek
 * away. Only the priorities that hold tasks not yet due need it: a walk of the claim index (one
 * seek per priority, from its lowest, landing on each one's last task by run time;
 * `PRIORITY_WALK_MAX` at most) finds those whose last task is not due, and they are remembered.
 * The reads then add a condition that holds for every priority: those known one by one
 * (`priority IN (…)`), and the gaps between them as ranges. Its truth never depends on what the
 * walk found, so nothing is missed when a task of a new priority arrives: its gap holds it, read
 * as a range until the next walk names it. Where no priority holds tasks not yet due (a queue of
 * work to do now), nothing is split: where it applies, the split costs 0.1-0.4 ms a claim (planning the ranges).
 *
 * The walk runs beside the claims, not in them, at most every WALK_EVERY_MS, and when it is slow
 * (beside a transaction held open, clean-up waits, and a seek may pass many entries) within
 * 1/COSTLY_SHARE of the time, as the claim's read from the start does (claim-cursor.ts). Until the
 * first walk ends, reads are not split.
 */
import type { Knex } from 'knex';
import { dueAgain, type ClaimStore as Store, type FlowPlan } from './claim-plan.js';

/** The walk looks at most at this many priorities; those after them stay in the last gap. */
export const PRIORITY_WALK_MAX = 32;
/** A walk at most this often (ms), and within 1/COSTLY_SHARE of the time (claim-plan.ts). */
export const WALK_EVERY_MS = 1_000;

/**
 * The next priority of unlocked unkeyed tasks above `after` (from the lowest when null), and the
 * run time of its last task: one backward seek of the claim index.
 */
async function nextPriority(store: Store, after: number | null): Promise<{ priority: number; lastRunAt: number } | null> {
  const from = store.dialect.claimIndexSource?.(store.knex, store.tables.tasks) ?? store.tables.tasks;
  const q = store.knex.select('priority', 'run_at').from(from).whereNull('locked_by').whereNull('concurrency_key');
  if (after !== null) q.where('priority', '>', after);
  // Backwards in the index (it orders priority DESC, run_at, id): the seek lands on the last
  // entry of the next priority and never reads into the priorities after it.
  const rows = (await q.orderBy([{ column: 'priority', order: 'asc' }, { column: 'run_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(1)) as Array<{ priority: unknown; run_at: unknown }>;
  return rows.length === 0 ? null : { priority: Number(rows[0]!.priority), lastRunAt: Number(rows[0]!.run_at) };
}

/**
 * The priorities of unlocked unkeyed tasks that hold tasks not due at `nowMs` (the claim's clock),
 * ascending, as the last walk found them; walks again first when due. The walk only makes reads
 * cheaper: when it fails (the database is away, a statement timed out), the last findings stay,
 * and its time still counts against its share.
 */
export async function knownPriorities(store: Store, plan: FlowPlan, nowMs: number): Promise<readonly number[]> {
  // One walk at a time: a claim beside this one (the prefetch's) waits for the same walk.
  if (plan.prioritiesWalk) return plan.prioritiesWalk;
  if (!dueAgain(plan.prioritiesAt, plan.prioritiesMs, WALK_EVERY_MS)) return plan.priorities;
  const started = performance.now();
  const walk = async (): Promise<readonly number[]> => {
    try {
      const found: number[] = [];
      let walked = 0;
      for (let p = await store.retrying(() => nextPriority(store, null)); p !== null; ) {
        if (p.lastRunAt > nowMs) found.push(p.priority);
        const after = p.priority;
        p = ++walked < PRIORITY_WALK_MAX ? await store.retrying(() => nextPriority(store, after)) : null;
      }
      plan.priorities = found;
    } catch {
      // Kept: the findings before (see above).
    } finally {
      plan.prioritiesMs = performance.now() - started;
      plan.prioritiesAt = Date.now();
      plan.prioritiesWalk = null;
    }
    return plan.priorities;
  };
  // Started once it is recorded, so that its end always clears it.
  plan.prioritiesWalk = Promise.resolve().then(walk);
  return plan.prioritiesWalk;
}

/**
 * Starts a walk when one is due, after a claim (not awaited: its seeks, one per priority, would
 * otherwise stand between a task's enqueue and its claim once a second, and the first would
 * compete with a worker's first claim for a connection).
 */
export function walkWhenDue(store: Store, plan: FlowPlan, nowMs: number): void {
  if (!plan.prioritiesWalk) void knownPriorities(store, plan, nowMs);
}

/**
 * Adds a condition true of every priority, split by `known` (ascending): each known priority
 * alone, and each gap before, between and after them as a range (see the header). Without known
 * priorities, the query as it is.
 */
export function splitByPriority(q: Knex.QueryBuilder, known: readonly number[]): Knex.QueryBuilder {
  // Priorities are integers (the column's type); the gaps' bounds below rely on it.
  if (known.length === 0 || !known.every(Number.isSafeInteger)) return q;
  return q.where((b) => {
    b.whereIn('priority', known as number[]);
    // Closed bounds one off each known priority: MariaDB's range optimizer merged an open gap
    // ending at a known priority (`priority < 1`) with that priority's range, and so lost its
    // bound on run_at (measured: 106 ms against 0.2 beside 100,000 tasks not yet due).
    b.orWhere('priority', '<=', known[0]! - 1);
    for (let i = 1; i < known.length; i++) {
      const [lo, hi] = [known[i - 1]!, known[i]!];
      if (hi - lo >= 2) b.orWhere((g) => g.where('priority', '>=', lo + 1).where('priority', '<=', hi - 1));
    }
    b.orWhere('priority', '>=', known[known.length - 1]! + 1);
  });
}

/**
 * The plain claim's reads split by priority (PostgreSQL, MySQL/MariaDB: dialect.seeksPerPriority).
 *
 * The claim index orders unlocked tasks by priority, then run time. A read of a range of
 * priorities can bound the run time (`run_at <= now`) only within one priority: across several,
 * the not-due tasks of each lie between its due ones and the next priority's, inside the range.
 * So a claim beside many not-due tasks of a priority that ranks above the due work walked them
 * all. Beside a million (the scale bench's "higher priority" case): MariaDB 610 ms a claim, its
 * cursor's backward check of the range above fetching every row (no index condition pushdown on
 * a backward read); PostgreSQL 26 ms. Split: 2.8 and 2.4 ms.
 *
 * Split into one range per priority, each is bounded by `now` and its due tasks are one seek
 * away. The priorities are found by a walk of the claim index (one seek per priority, from its
 * lowest; `PRIORITY_WALK_MAX` at most) and remembered. The reads then add a condition that holds
 * for every priority: those known one by one (`priority IN (…)`), and the gaps between them as
 * ranges. Its truth never depends on what the walk found, so nothing is missed when a task of a
 * new priority arrives: its gap holds it, read as a range until the next walk names it.
 *
 * The walk runs beside the claims, not in them, at most every WALK_EVERY_MS, and when it is slow
 * (beside a transaction held open, clean-up waits, and a seek may pass many entries) within
 * 1/WALK_SHARE of the time, as the claim's read from the start does (claim-cursor.ts). Until the
 * first walk ends, reads are not split.
 */
import type { Knex } from 'knex';
import type { ClaimStore as Store, FlowPlan } from './claim-plan.js';

/** The walk names at most this many priorities; those after them stay in the last gap. */
export const PRIORITY_WALK_MAX = 32;
/** A walk at most this often (ms)… */
export const WALK_EVERY_MS = 1_000;
/** …and within 1/WALK_SHARE of the time. */
const WALK_SHARE = 50;

/** The next priority of unlocked unkeyed tasks above `after` (from the lowest when null): one backward seek of the claim index. */
async function nextPriority(store: Store, after: number | null): Promise<number | null> {
  const from = store.dialect.claimIndexSource?.(store.knex, store.tables.tasks) ?? store.tables.tasks;
  const q = store.knex.select('priority').from(from).whereNull('locked_by').whereNull('concurrency_key');
  if (after !== null) q.where('priority', '>', after);
  // Backwards in the index (it orders priority DESC, run_at, id): the seek lands on the last
  // entry of the next priority and never reads into the priorities after it.
  const rows = (await q.orderBy([{ column: 'priority', order: 'asc' }, { column: 'run_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(1)) as Array<{ priority: unknown }>;
  return rows.length === 0 ? null : Number(rows[0]!.priority);
}

/**
 * The priorities of unlocked unkeyed tasks, ascending, as the last walk found them; walks again
 * first when due. The walk only makes reads cheaper: when it fails (the database is away, a
 * statement timed out), the last findings stay, and its time still counts against its share.
 */
export async function knownPriorities(store: Store, plan: FlowPlan): Promise<readonly number[]> {
  // One walk at a time: a claim beside this one (the prefetch's) waits for the same walk.
  if (plan.prioritiesWalk) return plan.prioritiesWalk;
  if (Date.now() - plan.prioritiesAt < Math.max(WALK_EVERY_MS, WALK_SHARE * plan.prioritiesMs)) return plan.priorities;
  const started = performance.now();
  const walk = async (): Promise<readonly number[]> => {
    try {
      const found: number[] = [];
      for (let p = await store.retrying(() => nextPriority(store, null)); p !== null; ) {
        found.push(p);
        const after = p;
        p = found.length < PRIORITY_WALK_MAX ? await store.retrying(() => nextPriority(store, after)) : null;
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
 * The last walk's findings, a walk started beside the caller when due (not awaited: its seeks,
 * one per priority, would otherwise stand between a task's enqueue and its claim once a second).
 */
export function priorities(store: Store, plan: FlowPlan): readonly number[] {
  if (!plan.prioritiesWalk) void knownPriorities(store, plan);
  return plan.priorities;
}

/**
 * Adds a condition true of every priority, split by `known` (ascending): each known priority
 * alone, and each gap before, between and after them as a range (see the header). Without known
 * priorities, the query as it is.
 */
export function splitByPriority(q: Knex.QueryBuilder, known: readonly number[]): Knex.QueryBuilder {
  if (known.length === 0) return q;
  return q.where((b) => {
    b.whereIn('priority', known as number[]);
    b.orWhere('priority', '<', known[0]!);
    for (let i = 1; i < known.length; i++) {
      const [lo, hi] = [known[i - 1]!, known[i]!];
      // Priorities are integers: no gap between neighbours (a fraction, which the column
      // cannot hold, keeps its gap so that the condition stays true of every value).
      if (hi - lo > 1 || !Number.isInteger(lo) || !Number.isInteger(hi)) b.orWhere((g) => g.where('priority', '>', lo).where('priority', '<', hi));
    }
    b.orWhere('priority', '>', known[known.length - 1]!);
  });
}

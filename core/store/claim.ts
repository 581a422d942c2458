/**
 * Claiming, with flow control. Two paths share each claim:
 * - the plain path claims unkeyed tasks of unlimited task names in queues that are neither paused
 *   nor limited, as one statement per database (dialects/): through the claim index in one
 *   ordered scan (on PostgreSQL and MySQL/MariaDB from where this worker's last claim ended:
 *   claim-cursor.ts), or, when some queues must be skipped, through the per-queue claim index, one
 *   ordered scan per queue (so a paused queue's backlog is never read);
 * - the flow path claims keyed tasks and tasks under a concurrency or rate limit, inside one
 *   transaction serialised by a lock row shared by every worker of the database (on SQLite, where
 *   the only limit is one per key, without either: store/flow-claim.ts): it reads what
 *   runs now and what started within each rate window, lets keys take turns (policy/flow.ts),
 *   admits what every limit has room for, claims exactly those rows and records their starts;
 *   rate windows are counted at the flow time (store/flow-clock.ts), read once the lock is held.
 * The two paths take turns going first, claim by claim, so neither can starve the other. Tasks
 * held back stay READY: no attempt is counted and no error recorded.
 */
import type { Knex } from 'knex';
import type { TaskRow } from '../types.js';
import { applyNames, applyQueues, dueBase, limitedName, LOOK_EVERY_MS, order, type ClaimArgs, type ClaimFilter, type ClaimStore as Store, type FlowPlan } from './claim-plan.js';
import { claimAlongCursor } from './claim-cursor.js';
import { flowClaim } from './flow-claim.js';
import { toTaskRow } from './rows.js';

export { applyBudget, emptyFlowPlan, onlyOnePerKey, underFlowControl } from './claim-plan.js';
export type { ClaimArgs, ClaimFilter, ClaimStore, FlowPlan, RunBudget } from './claim-plan.js';

/** Queues the plain path must skip (paused or limited), among those this worker claims from. */
function skippedQueues(f: ClaimFilter, plan: FlowPlan): string[] {
  const all = [...plan.pausedQueues, ...plan.queueLimits.keys()];
  return [...new Set(all)].filter((q) => (f.queues ? f.queues.includes(q) : true) && !(f.excludeQueues ?? []).includes(q));
}

/** Due, unlocked, unkeyed tasks (the plain claim's base). */
function plainBase(store: Store, db: Knex, a: ClaimArgs): Knex.QueryBuilder {
  return dueBase(db(store.tables.tasks).whereNull('concurrency_key'), a);
}

/**
 * The distinct queues of unlocked, unkeyed tasks (a skip scan of the per-queue claim index: one
 * seek per queue, however many tasks each holds), unless the dialect lists them its own way
 * (`queuesWithTasks`). Tasks without a queue are not listed.
 */
async function queuesWithTasks(store: Store, db: Knex): Promise<string[]> {
  const t = store.tables.tasks;
  if (store.dialect.queuesWithTasks) return store.dialect.queuesWithTasks(db, t);
  const step = `SELECT MIN(queue) FROM ${store.dialect.quote(t)} WHERE locked_by IS NULL AND concurrency_key IS NULL AND queue > q.name`;
  const sql =
    `WITH RECURSIVE q(name) AS (SELECT MIN(queue) FROM ${store.dialect.quote(t)} WHERE locked_by IS NULL AND concurrency_key IS NULL AND queue IS NOT NULL ` +
    `UNION ALL SELECT (${step}) FROM q WHERE q.name IS NOT NULL) SELECT name FROM q WHERE name IS NOT NULL`;
  const rows = store.dialect.rows(await db.raw(sql));
  return rows.map((r) => String(r.name));
}

/**
 * The queues holding unlocked unkeyed tasks, as looked up at most every LOOK_EVERY_MS: the look
 * was a second statement in every claim beside a paused queue, as costly as the claim. Tasks that
 * another process puts in a queue the last look did not find wait for the next look, as keyed
 * tasks wait for theirs.
 */
async function knownQueues(store: Store, db: Knex, plan: FlowPlan): Promise<string[]> {
  const now = Date.now();
  if (now - plan.queuesSeenAt < LOOK_EVERY_MS) return plan.queuesSeen;
  plan.queuesSeen = await queuesWithTasks(store, db);
  plan.queuesSeenAt = now;
  return plan.queuesSeen;
}

/** Plain tasks: unkeyed, of names without limits, in queues neither paused nor limited. */
async function plainClaim(store: Store, a: ClaimArgs, want: number): Promise<Record<string, unknown>[]> {
  const names = a.names.filter((n) => !limitedName(a.plan, n));
  if (names.length === 0 || want <= 0) return [];
  // While the flow path claims, a plain claim that found nothing is not tried again for
  // LOOK_EVERY_MS (nor sooner once inserts are heard): it was one more statement in each of a
  // busy keyed worker's claims. An idle worker tries at every poll.
  // (Only a claim of every priority counts: one above a priority, the prefetch's check, finding
  // nothing says nothing of the rest.)
  const plan = a.plan;
  const whole = a.above === undefined;
  if (whole && plan.flowClaimed && Date.now() - plan.plainEmptyAt < LOOK_EVERY_MS) return [];
  const rows = await plainRows(store, a, names, want);
  if (whole) plan.plainEmptyAt = rows.length === 0 && plan.flowClaimed ? Date.now() : -Infinity;
  return rows;
}

async function plainRows(store: Store, a: ClaimArgs, names: string[], want: number): Promise<Record<string, unknown>[]> {
  const dir = a.ordering === 'ASC' ? 'asc' : 'desc';
  const skip = skippedQueues(a, a.plan);
  const knex = store.knex;
  if (skip.length === 0) return claimAlongCursor(store, a, want, () => applyQueues(applyNames(plainBase(store, knex, a).select('id'), names), a, []));
  // Some queues are skipped: one ordered scan per queue claimed from, so a skipped queue's
  // backlog is never read (an exclusion in one scan would walk past all of it).
  const queues: Array<string | null> = a.queues ? [...a.queues] : [null, ...(await knownQueues(store, knex, a.plan))];
  const members = queues
    .filter((q) => q === null || !skip.includes(q))
    .filter((q) => q === null || !(a.excludeQueues ?? []).includes(q))
    .map((q) => {
      const m = applyNames(plainBase(store, knex, a).select('id', 'priority', 'run_at'), names);
      if (q === null) m.whereNull('queue');
      else m.where('queue', q);
      return m.orderBy(order(dir)).limit(want);
    });
  if (members.length === 0) return [];
  return store.retrying(() => store.dialect.claim(knex, store.tables.tasks, { members, limit: want, ordering: a.ordering }, a.set));
}

/** Claims up to `limit` due tasks through both paths; sorted in claim order. */
export async function claimTasks(store: Store, a: ClaimArgs): Promise<TaskRow[]> {
  const flowMax = Math.min(a.limit, a.flowLimit ?? a.limit);
  const claim = async (path: typeof flowClaim, left: number) => {
    if (path !== flowClaim) return path(store, a, left);
    const rows = await path(store, a, Math.min(left, flowMax));
    a.plan.flowClaimed = rows.length > 0;
    return rows;
  };
  const first = a.plan.flowFirst ? flowClaim : plainClaim;
  const second = a.plan.flowFirst ? plainClaim : flowClaim;
  a.plan.flowFirst = !a.plan.flowFirst;
  const raw = await claim(first, a.limit);
  if (raw.length < a.limit) {
    try {
      raw.push(...(await claim(second, a.limit - raw.length)));
    } catch (err) {
      // What the first path claimed is held now and must reach the worker; the second path's
      // error comes back at the next claim.
      if (raw.length === 0) throw err;
    }
  }
  const rows = raw.map(toTaskRow);
  const sign = a.ordering === 'ASC' ? 1 : -1;
  rows.sort((x, y) => sign * (x.priority - y.priority) || x.runAt - y.runAt || Number(x.id) - Number(y.id));
  return rows;
}

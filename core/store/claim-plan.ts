/**
 * What both claim paths (store/claim.ts) share: the worker's filter and flow plan, a claim's
 * arguments and run budget, and the conditions every claim applies.
 */
import type { Knex } from 'knex';
import type { QueueLimits, TaskLimits } from '../policy/flow.js';
import type { TaskRow } from '../types.js';
import type { ClaimSet, Db, Dialect } from './dialects/dialect.js';
import type { Tables } from './tables.js';

/** What a claim needs of the store (Store has it; declared here so the two files do not import each other). */
export interface ClaimStore {
  readonly knex: Knex;
  readonly tables: Tables;
  readonly dialect: Dialect;
  retrying<T>(op: () => Promise<T>): Promise<T>;
  tx<T>(fn: (trx: Knex.Transaction) => Promise<T>, db?: Db): Promise<T>;
}

export type Store = ClaimStore;

export interface ClaimFilter {
  /** Task names this worker can run. */
  names: readonly string[];
  /** Only these queues (null: any queue, including no queue). */
  queues: readonly string[] | null;
  /** Every queue but these (tasks without a queue included). */
  excludeQueues: readonly string[] | null;
  ordering: 'DESC' | 'ASC';
}

/** What a worker knows of flow control when it claims (refreshed every poll). */
export interface FlowPlan {
  /** Queues nothing may be claimed from. */
  pausedQueues: ReadonlySet<string>;
  /** Queues with a concurrency or rate limit (their rows of the queues table). */
  queueLimits: ReadonlyMap<string, QueueLimits>;
  /** This worker's task names whose definitions declare limits. */
  taskLimits: ReadonlyMap<string, TaskLimits>;
  /** Where keys' turns go on (the last key served); moved by each flow claim. */
  keyCursor: string | null;
  /** Which path claims first this time (flipped by each claim). */
  flowFirst: boolean;
  /** Whether keyed tasks were found waiting at the last look, and when that was (epoch ms, real clock). */
  keyedSeenAt: number;
  keyed: boolean;
  /** Whether the last look from the first key found every due key in one window (see flowClaim). */
  keysFit: boolean;
  /** How many keys the last look found. */
  keysFound: number;
  /**
   * The queues the last look found holding unlocked unkeyed tasks (the plain path's per-queue
   * claim), and when it looked (epoch ms, real clock).
   */
  queuesSeen: string[];
  queuesSeenAt: number;
  /**
   * When the plain path last found nothing while the flow path was claiming (epoch ms, real
   * clock; see plainClaim).
   */
  plainEmptyAt: number;
  /** Whether the last flow claim claimed anything. */
  flowClaimed: boolean;
  /**
   * Names whose tasks carry keys, as far as this worker knows: those whose definitions declare a
   * key or a per-key limit, and those of the keyed tasks its claims have read.
   */
  keyedNames: Set<string>;
  /**
   * The end of this worker's claim under way without the flow lock (see flowClaim): such claims
   * of one worker run one at a time, so each reads what the one before it claimed.
   */
  unlockedClaim: Promise<unknown>;
  /** Where the plain claim's scans have reached, and when and how fast one last read from the start (store/claim-cursor.ts). */
  claimCursor: ClaimPosition | null;
  fullClaimAt: number;
  fullClaimMs: number;
  /** How long the last claim from the cursor took (ms; 0 before the first), and when it ended (epoch ms). */
  cursorClaimMs: number;
  cursorClaimAt: number;
  /** Whether the last plain claim came back with fewer tasks than it wanted. */
  claimShort: boolean;
  /**
   * The priorities of unlocked unkeyed tasks that hold tasks not yet due (ascending) as the last
   * walk found them, when it ended (epoch ms) and how long it took (ms): store/claim-priorities.ts.
   */
  priorities: number[];
  prioritiesAt: number;
  prioritiesMs: number;
  /** The walk under way, if one is. */
  prioritiesWalk: Promise<readonly number[]> | null;
}

/** A place in the claim order: a task's priority, run time and id. */
export interface ClaimPosition {
  priority: number;
  runAt: number;
  id: string;
}

export function emptyFlowPlan(): FlowPlan {
  return {
    pausedQueues: new Set(),
    queueLimits: new Map(),
    taskLimits: new Map(),
    keyCursor: null,
    flowFirst: false,
    keyedSeenAt: -Infinity,
    keyed: false,
    keysFit: false,
    keysFound: 0,
    queuesSeen: [],
    queuesSeenAt: -Infinity,
    plainEmptyAt: -Infinity,
    flowClaimed: false,
    keyedNames: new Set(),
    unlockedClaim: Promise.resolve(),
    claimCursor: null,
    fullClaimAt: -Infinity,
    fullClaimMs: 0,
    cursorClaimMs: 0,
    cursorClaimAt: -Infinity,
    claimShort: false,
    priorities: [],
    prioritiesAt: -Infinity,
    prioritiesMs: 0,
    prioritiesWalk: null,
  };
}

/** The time left to a duration run, and the run-time limits its task definitions declare (ms). */
export interface RunBudget {
  remainingMs: number;
  /** Names whose definitions declare a maxRunTime; a name not here has none. */
  maxRunTimeMsByName: ReadonlyMap<string, number>;
}

/**
 * Only tasks whose run-time limit fits the time left: their own, else their definition's. A task
 * with neither is not held back: its run time is unknown (the maxRunTime setting's default is a
 * safety net, not an estimate, and would hold back every such task from a cron run).
 */
export function applyBudget(q: Knex.QueryBuilder, budget: RunBudget | undefined): Knex.QueryBuilder {
  if (!budget) return q;
  const tooLong = [...budget.maxRunTimeMsByName].filter(([, ms]) => ms > budget.remainingMs).map(([n]) => n);
  return q.where((b) => {
    b.where((own) => own.whereNotNull('max_run_time_ms').where('max_run_time_ms', '<=', budget.remainingMs));
    b.orWhere((def) => {
      def.whereNull('max_run_time_ms');
      if (tooLong.length > 0) def.whereNotIn('name', tooLong);
    });
  });
}

export interface ClaimArgs extends ClaimFilter {
  workerId: string;
  nowMs: number;
  /**
   * The worker's clock, read again once the flow path holds its lock: the claim waited for the
   * lock after `nowMs` was read. Without it, `nowMs` is used.
   */
  now?: () => number;
  limit: number;
  set: ClaimSet;
  plan: FlowPlan;
  budget?: RunBudget;
  /** Only tasks whose priority ranks strictly above this one (the prefetch's priority check). */
  above?: number;
  /** At most this many keyed or limited tasks (the flow path); default `limit`. */
  flowLimit?: number;
  /** Tasks whose attempts ended on this worker, results not yet written: id → claim token (see usageOf). */
  ended?: ReadonlyMap<string, string>;
  /** Up to this many tasks of a key no other worker holds (see ClaimRequest.keyChain). */
  keyChain?: number;
}

/** Due and unlocked, within the run budget and above the priority asked for. */
export function dueBase(q: Knex.QueryBuilder, a: ClaimArgs): Knex.QueryBuilder {
  q.whereNull('locked_by').where('run_at', '<=', a.nowMs);
  if (a.above !== undefined) q.where('priority', a.ordering === 'ASC' ? '<' : '>', a.above);
  return applyBudget(q, a.budget);
}

/**
 * A claim's reads that may be slow beside a transaction held open (the read from the start, the
 * walk of priorities) take at most 1/COSTLY_SHARE of the time each.
 */
export const COSTLY_SHARE = 50;

/**
 * Whether such a read is due again (epoch ms, real clock): at least `floorMs` after the last one
 * ended (`at`), and COSTLY_SHARE times what it took (`tookMs`).
 */
export function dueAgain(at: number, tookMs: number, floorMs: number): boolean {
  return Date.now() - at >= Math.max(floorMs, COSTLY_SHARE * tookMs);
}

/**
 * How long a claim trusts its last look at what waits: whether keyed tasks do (one index probe),
 * and which queues hold tasks when some queue is skipped. Looked at again sooner once the worker
 * hears of inserts (FlowState.tasksCreated).
 */
export const LOOK_EVERY_MS = 250;

export const order = (dir: 'asc' | 'desc') => [
  { column: 'priority', order: dir },
  { column: 'run_at', order: 'asc' },
  { column: 'id', order: 'asc' },
];

/** Whether a claimed task came through the flow path (keyed, or under a limit the plan knows). */
export function underFlowControl(plan: FlowPlan, t: Pick<TaskRow, 'name' | 'queue' | 'concurrencyKey'>): boolean {
  return t.concurrencyKey !== null || limitedName(plan, t.name) || (t.queue !== null && plan.queueLimits.has(t.queue));
}

/** The highest per-key limit among `names` (1 when none declares one: the default). */
export function keyLimitOf(plan: FlowPlan, names: readonly string[]): number {
  return Math.max(1, ...names.map((n) => plan.taskLimits.get(n)?.concurrencyLimit ?? 1));
}

/**
 * Whether the only limit on the tasks `f` claims is a per-key limit of 1: no limit on a queue it
 * claims from, no task concurrency or rate limit, no per-key limit above 1.
 */
export function onlyOnePerKey(plan: FlowPlan, f: Pick<ClaimFilter, 'names' | 'queues' | 'excludeQueues'>): boolean {
  const served = (q: string) => (f.queues ? f.queues.includes(q) : !(f.excludeQueues ?? []).includes(q));
  return [...plan.queueLimits.keys()].every((q) => !served(q)) && f.names.every((n) => !limitedName(plan, n)) && keyLimitOf(plan, f.names) === 1;
}

/** Whether a name's unkeyed tasks go through the flow path (a concurrency or rate limit of its own). */
export function limitedName(plan: FlowPlan, name: string): boolean {
  const l = plan.taskLimits.get(name);
  return !!l && (!!l.concurrency || !!l.rateLimit);
}

export function applyNames(q: Knex.QueryBuilder, names: readonly string[]): Knex.QueryBuilder {
  return q.whereIn('name', names as string[]);
}

export function applyQueues(q: Knex.QueryBuilder, f: ClaimFilter, skip: readonly string[]): Knex.QueryBuilder {
  if (f.queues) q.whereIn('queue', f.queues as string[]);
  const ex = [...(f.excludeQueues ?? []), ...skip];
  if (ex.length > 0) q.where((b) => b.whereNull('queue').orWhereNotIn('queue', ex));
  return q;
}

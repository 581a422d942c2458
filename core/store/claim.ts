/**
 * Claiming, with flow control. Two paths share each claim:
 * - the plain path claims unkeyed tasks of unlimited task names in queues that are neither paused
 *   nor limited, as one statement per database (dialects/): through the claim index in one
 *   ordered scan, or, when some queues must be skipped, through the per-queue claim index, one
 *   ordered scan per queue (so a paused queue's backlog is never read);
 * - the flow path claims keyed tasks and tasks under a concurrency or rate limit, inside one
 *   transaction serialised by a lock row shared by every worker of the database: it reads what
 *   runs now and what started within each rate window, lets keys take turns (policy/flow.ts),
 *   admits what every limit has room for, claims exactly those rows and records their starts;
 *   rate windows are counted at the flow time (store/flow-clock.ts), read once the lock is held.
 * The two paths take turns going first, claim by claim, so neither can starve the other. Tasks
 * held back stay READY: no attempt is counted and no error recorded.
 */
import type { Knex } from 'knex';
import { admit, isKeyLimit, limitersFor, rateWindow, takeTurns, type FlowCandidate, type Limiter, type QueueLimits, type TaskLimits, type Usage } from '../policy/flow.js';
import type { TaskRow } from '../types.js';
import type { ClaimSet, Db, Dialect } from './dialects/dialect.js';
import { lockFlow, readFlowTime, setFlowTime } from './flow-clock.js';
import { toTaskRow } from './rows.js';
import type { Tables } from './tables.js';

/** What a claim needs of the store (Store has it; declared here so the two files do not import each other). */
export interface ClaimStore {
  readonly knex: Knex;
  readonly tables: Tables;
  readonly dialect: Dialect;
  retrying<T>(op: () => Promise<T>): Promise<T>;
  tx<T>(fn: (trx: Knex.Transaction) => Promise<T>, db?: Db): Promise<T>;
}

type Store = ClaimStore;

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
function dueBase(q: Knex.QueryBuilder, a: ClaimArgs): Knex.QueryBuilder {
  q.whereNull('locked_by').where('run_at', '<=', a.nowMs);
  if (a.above !== undefined) q.where('priority', a.ordering === 'ASC' ? '<' : '>', a.above);
  return applyBudget(q, a.budget);
}

/**
 * How long a claim trusts its last look at what waits: whether keyed tasks do (one index probe),
 * and which queues hold tasks when some queue is skipped. Looked at again sooner once the worker
 * hears of inserts (FlowState.tasksCreated).
 */
const LOOK_EVERY_MS = 250;
/** Keys looked at per flow claim, at most: bounds the work of one claim whatever the key count. */
const MAX_KEYS_PER_CLAIM = 500;

const order = (dir: 'asc' | 'desc') => [
  { column: 'priority', order: dir },
  { column: 'run_at', order: 'asc' },
  { column: 'id', order: 'asc' },
];

/** Whether a claimed task came through the flow path (keyed, or under a limit the plan knows). */
export function underFlowControl(plan: FlowPlan, t: Pick<TaskRow, 'name' | 'queue' | 'concurrencyKey'>): boolean {
  return t.concurrencyKey !== null || limitedName(plan, t.name) || (t.queue !== null && plan.queueLimits.has(t.queue));
}

/** The highest per-key limit among `names` (1 when none declares one: the default). */
function keyLimitOf(plan: FlowPlan, names: readonly string[]): number {
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
function limitedName(plan: FlowPlan, name: string): boolean {
  const l = plan.taskLimits.get(name);
  return !!l && (!!l.concurrency || !!l.rateLimit);
}

/** Queues the plain path must skip (paused or limited), among those this worker claims from. */
function skippedQueues(f: ClaimFilter, plan: FlowPlan): string[] {
  const all = [...plan.pausedQueues, ...plan.queueLimits.keys()];
  return [...new Set(all)].filter((q) => (f.queues ? f.queues.includes(q) : true) && !(f.excludeQueues ?? []).includes(q));
}

function applyNames(q: Knex.QueryBuilder, names: readonly string[]): Knex.QueryBuilder {
  return q.whereIn('name', names as string[]);
}

function applyQueues(q: Knex.QueryBuilder, f: ClaimFilter, skip: readonly string[]): Knex.QueryBuilder {
  if (f.queues) q.whereIn('queue', f.queues as string[]);
  const ex = [...(f.excludeQueues ?? []), ...skip];
  if (ex.length > 0) q.where((b) => b.whereNull('queue').orWhereNotIn('queue', ex));
  return q;
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
  const plan = a.plan;
  if (plan.flowClaimed && Date.now() - plan.plainEmptyAt < LOOK_EVERY_MS) return [];
  const rows = await plainRows(store, a, names, want);
  plan.plainEmptyAt = rows.length === 0 && plan.flowClaimed ? Date.now() : -Infinity;
  return rows;
}

async function plainRows(store: Store, a: ClaimArgs, names: string[], want: number): Promise<Record<string, unknown>[]> {
  const dir = a.ordering === 'ASC' ? 'asc' : 'desc';
  const skip = skippedQueues(a, a.plan);
  const knex = store.knex;
  if (skip.length === 0) {
    const q = applyQueues(applyNames(plainBase(store, knex, a).select('id'), names), a, []).orderBy(order(dir)).limit(want);
    return store.retrying(() => store.dialect.claim(knex, store.tables.tasks, q, a.set));
  }
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

/** Whether keyed tasks wait (looked at most every LOOK_EVERY_MS; an index probe). */
async function keyedWaiting(store: Store, plan: FlowPlan): Promise<boolean> {
  const now = Date.now();
  if (now - plan.keyedSeenAt < LOOK_EVERY_MS) return plan.keyed;
  const row = await store.knex(store.tables.tasks).select('id').whereNull('locked_by').whereNotNull('concurrency_key').first();
  plan.keyed = row !== undefined;
  plan.keyedSeenAt = now;
  return plan.keyed;
}

/**
 * The first due key (of an unlocked task) matching `where`, as one ordered index seek: MariaDB
 * computes MIN() with a condition beside the key by reading the whole range (twice as slow over
 * 100 keys in 10,000 tasks), where `ORDER BY … LIMIT 1` stops at the first entry on every database.
 */
function nextKey(table: string, where: string): string {
  return `SELECT concurrency_key FROM ${table} WHERE locked_by IS NULL AND run_at <= ? AND ${where} ORDER BY concurrency_key LIMIT 1`;
}

/**
 * Keys of unlocked tasks due by `nowMs`, in key order from after `cursor`, wrapping; at most `max`.
 * Only due keys: keys whose tasks all run later (scheduled, snoozed) would otherwise fill the
 * claim's share of keys and keep the due ones from ever being looked at. A recursive walk of the
 * key index (a seek per key), unless the dialect lists the keys its own way (`dueKeys`).
 */
async function keysInTurn(store: Store, trx: Knex.Transaction, plan: FlowPlan, cursor: string | null, max: number, nowMs: number): Promise<string[]> {
  const t = store.dialect.quote(store.tables.tasks);
  const scan = async (after: string | null, upTo: string | null, limit: number): Promise<string[]> => {
    if (store.dialect.dueKeys) {
      const listed = store.dialect.dueKeys(store.tables.tasks, after, upTo, limit, nowMs);
      return store.dialect.rows(await trx.raw(listed.sql, listed.bindings)).map((r) => String(r.name));
    }
    const first = after === null ? 'concurrency_key IS NOT NULL' : 'concurrency_key > ?';
    const sql =
      `WITH RECURSIVE k(name) AS (SELECT (${nextKey(t, first)}) ` +
      `UNION ALL SELECT (${nextKey(t, 'concurrency_key > k.name')}) FROM k WHERE k.name IS NOT NULL) ` +
      `SELECT name FROM k WHERE name IS NOT NULL${upTo === null ? '' : ' AND name <= ?'} LIMIT ${Math.max(1, Math.floor(limit))}`;
    const bindings = [nowMs, ...(after === null ? [] : [after]), nowMs, ...(upTo === null ? [] : [upTo])];
    return store.dialect.rows(await trx.raw(sql, bindings)).map((r) => String(r.name));
  };
  if (plan.keysFit || cursor === null) {
    // The last look from the first key found every due key within one window: look from the
    // first key again and start the turn after the cursor here, one statement where a look from
    // the cursor takes two (the turn wraps past the last key).
    const all = await scan(null, null, max);
    plan.keysFit = all.length < max;
    if (plan.keysFit || cursor === null) return rotate(all, cursor);
  }
  const after = await scan(cursor, null, max);
  if (after.length >= max) return after;
  return [...after, ...(await scan(null, cursor, max - after.length))];
}

/** Keys in turn order: those after `cursor` first, then from the first key (keys in key order). */
function rotate(keys: string[], cursor: string | null): string[] {
  if (cursor === null) return keys;
  const at = keys.findIndex((k) => k > cursor);
  return at > 0 ? [...keys.slice(at), ...keys.slice(0, at)] : keys;
}

/**
 * The id of the first task (in claim order) of each key, in one statement: a correlated
 * subquery per row of a list of the keys.
 */
async function firstOfEachKey(store: Store, trx: Knex.Transaction, keys: readonly string[], first: () => Knex.QueryBuilder): Promise<string[]> {
  const list = keys.map(() => 'SELECT ? AS ck').join(' UNION ALL ');
  const inner = first().whereRaw('concurrency_key = k.ck').toSQL();
  const sql = `SELECT (${inner.sql}) AS id FROM (${list}) k`;
  const rows = store.dialect.rows(await trx.raw(sql, [...(inner.bindings as Knex.RawBinding[]), ...keys]));
  return rows.filter((r) => r.id !== null && r.id !== undefined).map((r) => String(r.id));
}

/**
 * keysInTurn and firstOfEachKey in one statement: the due keys after `after`
 * (all keys when null), at most `max`, then, when `wrap`, those from the first key up to `after`,
 * each with its first task in claim order (null columns when none of its tasks is one this claim
 * may take). Keys in turn order, as the index orders them; at most `max` in all.
 */
async function keysWithFirsts(
  store: Store,
  trx: Knex.Transaction,
  after: string | null,
  wrap: boolean,
  max: number,
  nowMs: number,
  first: () => Knex.QueryBuilder,
  running: Knex.QueryBuilder,
  /** Tasks read per key (its first ones in claim order). */
  depth = 1,
): Promise<{ keys: string[]; firsts: Candidate[]; running: RunningRow[] }> {
  const t = store.dialect.quote(store.tables.tasks);
  const limit = Math.max(1, Math.floor(max));
  const also = running.toSQL();
  const bindings: Knex.RawBinding[] = [];
  const keyList = store.dialect.dueKeys ? listedKeys(store, bindings, after, wrap, limit, nowMs) : walkedKeys(t, bindings, after, wrap, limit, nowMs);
  const cols = 'f.id, f.name, f.queue, f.concurrency_key, f.priority, f.run_at, NULL AS locked_by, NULL AS claim_token';
  const branches: string[] = [];
  if (store.dialect.lateralJoins) {
    // PostgreSQL plans `f.id = (seek)` as a hash join over a sequential scan of the whole table
    // (measured: 5 ms against 1.8 ms over 7,000 tasks, and growing with them); a lateral join
    // reads each key's first rows by the seek itself.
    const seek = first().whereRaw('concurrency_key = ks.name').clearSelect().select('id', 'name', 'queue', 'concurrency_key', 'priority', 'run_at').limit(depth).toSQL();
    bindings.push(...(seek.bindings as Knex.RawBinding[]));
    branches.push(`SELECT 0 AS kind, ks.part AS part, ks.n AS n, ROW_NUMBER() OVER (PARTITION BY ks.part, ks.n ORDER BY f.priority) - 1 AS depth, ks.name AS scan_key, ${cols} FROM ks LEFT JOIN LATERAL (${seek.sql}) f ON true`);
  } else {
    // Elsewhere a primary-key look-up of each key's first task, its second, …: one branch each.
    for (let d = 0; d < depth; d++) {
      const seek = first().whereRaw('concurrency_key = ks.name').offset(d).toSQL();
      bindings.push(...(seek.bindings as Knex.RawBinding[]));
      branches.push(`SELECT 0 AS kind, ks.part AS part, ks.n AS n, ${d} AS depth, ks.name AS scan_key, ${cols} FROM ks ${d === 0 ? 'LEFT ' : ''}JOIN ${t} f ON f.id = (${seek.sql})`);
    }
  }
  bindings.push(...(also.bindings as Knex.RawBinding[]));
  // The running tasks the limits count come in the same statement (kind 1): one round trip less
  // in every keyed claim.
  const sql =
    `${keyList} ${branches.join(' UNION ALL ')} ` +
    `UNION ALL SELECT 1, NULL, NULL, NULL, NULL, r.id, r.name, r.queue, r.concurrency_key, NULL, NULL, r.locked_by, r.claim_token FROM (${also.sql}) r ` +
    `ORDER BY kind, part, n, depth`;
  const all = store.dialect.rows(await trx.raw(sql, bindings));
  const keys = all.filter((r) => Number(r.kind) === 0 && Number(r.depth) === 0).slice(0, limit).map((r) => String(r.scan_key));
  const looked = new Set(keys);
  const firsts: Candidate[] = [];
  for (const r of all) {
    if (Number(r.kind) !== 0 || r.id === null || r.id === undefined || !looked.has(String(r.scan_key))) continue;
    firsts.push({ id: String(r.id), name: String(r.name), queue: r.queue === null ? null : String(r.queue), key: String(r.concurrency_key), priority: Number(r.priority), runAt: Number(r.run_at) });
  }
  const runningRows = all.filter((r) => Number(r.kind) === 1) as unknown as RunningRow[];
  return { keys, firsts, running: runningRows };
}

/**
 * keysWithFirsts' `ks` (name, n, part) through a recursive walk of the key index, a seek per key.
 * `upTo` also ends the walk past it, and it stops at `limit` keys: the ORDER BY of the statement
 * sorts the whole walk, so without that bound a claim would seek every due key (tens of thousands
 * of tenants) while it holds the flow lock.
 */
function walkedKeys(t: string, bindings: Knex.RawBinding[], after: string | null, wrap: boolean, limit: number, nowMs: number): string {
  const walk = (cte: string, from: string | null, upTo: string | null): string => {
    bindings.push(nowMs, ...(from === null ? [] : [from]), nowMs, ...(upTo === null ? [] : [upTo]));
    return (
      `${cte}(name, n) AS (SELECT (${nextKey(t, from === null ? 'concurrency_key IS NOT NULL' : 'concurrency_key > ?')}), 1 ` +
      `UNION ALL SELECT (${nextKey(t, `concurrency_key > ${cte}.name`)}), ${cte}.n + 1 FROM ${cte} ` +
      `WHERE ${cte}.name IS NOT NULL AND ${cte}.n < ${limit}${upTo === null ? '' : ` AND ${cte}.name < ?`})`
    );
  };
  const parts = [walk('k0', after, null)];
  if (wrap && after !== null) parts.push(walk('k1', null, after));
  const pick = (cte: string, part: number, upTo: string | null) => {
    if (upTo !== null) bindings.push(upTo);
    return `SELECT * FROM (SELECT name, n, ${part} AS part FROM ${cte} WHERE name IS NOT NULL${upTo === null ? '' : ' AND name <= ?'} ORDER BY n LIMIT ${limit}) p${part}`;
  };
  const ks = parts.length === 1 ? pick('k0', 0, null) : `${pick('k0', 0, null)} UNION ALL ${pick('k1', 1, after)}`;
  return `WITH RECURSIVE ${parts.join(', ')}, ks AS (${ks})`;
}

/**
 * keysWithFirsts' `ks` (name, n, part) through the dialect's own list of keys: once from `after`
 * and, when the turn wraps, once more from the first key up to `after` (each in key order).
 */
function listedKeys(store: Store, bindings: Knex.RawBinding[], after: string | null, wrap: boolean, limit: number, nowMs: number): string {
  const part = (n: number, from: string | null, upTo: string | null) => {
    const listed = store.dialect.dueKeys!(store.tables.tasks, from, upTo, limit, nowMs);
    bindings.push(...listed.bindings);
    return `SELECT name, name AS n, ${n} AS part FROM (${listed.sql}) p${n}`;
  };
  return `WITH ks AS (${part(0, after, null)}${wrap && after !== null ? ` UNION ALL ${part(1, null, after)}` : ''})`;
}

/** The limits of one candidate. */
function limitersOf(plan: FlowPlan, chain: number): (t: FlowCandidate) => Limiter[] {
  const cache = new Map<string, Limiter[]>();
  return (t) => {
    const k = `${t.name}\u0000${t.queue ?? ''}\u0000${t.key ?? ''}\u0000${t.queue === null ? 0 : 1}`;
    let ls = cache.get(k);
    if (!ls) {
      ls = limitersFor(t, plan.taskLimits.get(t.name), t.queue === null ? undefined : plan.queueLimits.get(t.queue));
      // A chain: the key admits `chain` of this worker's tasks (usageOf fills it when another
      // worker holds the key); the worker starts them one at a time.
      if (chain > 1) ls = ls.map((l) => (isKeyLimit(l, t) ? { ...l, limit: chain } : l));
      cache.set(k, ls);
    }
    return ls;
  };
}

/**
 * Usage of the limiters: RUNNING tasks under a live lease at `nowMs`, and starts within each rate
 * window ending at the flow time (`rateNow`, read only when a rate limit is among them). A task
 * that `ended` says ended on the claiming worker is not counted as running: its lease lasts until
 * its result is written, but it runs no more (other workers, who cannot know, still count it).
 */
/** A task under a live lease that some limit counts (usageOf). */
interface RunningRow {
  id: unknown;
  name: string;
  queue: string | null;
  concurrency_key: string | null;
  locked_by: string;
  claim_token: string | null;
}

/** The tasks under a live lease at `nowMs` that a concurrency limit of the plan counts. */
function runningQuery(store: Store, trx: Knex.Transaction, plan: FlowPlan, nowMs: number): Knex.QueryBuilder {
  const limitedNames = [...plan.taskLimits.keys()].filter((n) => limitedName(plan, n));
  const limitedQueues = [...plan.queueLimits.keys()];
  return trx(store.tables.tasks)
    .select('id', 'name', 'queue', 'concurrency_key', 'locked_by', 'claim_token')
    .whereNotNull('locked_by')
    .where('locked_until', '>', nowMs)
    .where((b) => {
      b.whereNotNull('concurrency_key');
      if (limitedNames.length) b.orWhereIn('name', limitedNames);
      if (limitedQueues.length) b.orWhereIn('queue', limitedQueues);
    });
}

async function usageOf(
  store: Store,
  trx: Knex.Transaction,
  limiters: Limiter[],
  of: (t: FlowCandidate) => Limiter[],
  rateNow: () => Promise<number>,
  mine: { workerId: string; ended: ReadonlyMap<string, string> | undefined; chain: number },
  /** runningQuery's rows, read in this transaction once the lock was held. */
  running: readonly RunningRow[],
): Promise<Usage> {
  const usage: Usage = new Map();
  const heldElsewhere: Limiter[] = [];
  const ended = mine.ended;
  for (const r of running) {
    // Ended on this worker (its own lease, the same claim), its result not yet written.
    if (ended !== undefined && ended.size > 0 && r.locked_by === mine.workerId && r.claim_token !== null && ended.get(String(r.id)) === r.claim_token) continue;
    const t = { id: String(r.id), name: r.name, queue: r.queue, key: r.concurrency_key };
    for (const l of of(t)) {
      if (l.kind !== 'concurrency') continue;
      usage.set(l.id, (usage.get(l.id) ?? 0) + 1);
      if (mine.chain > 1 && r.locked_by !== mine.workerId && isKeyLimit(l, t)) heldElsewhere.push(l);
    }
  }
  // A key another worker holds is full for a chain (its limit is 1 across workers).
  for (const l of heldElsewhere) usage.set(l.id, l.limit);
  const rates = limiters.filter((l) => l.kind === 'rate');
  if (rates.length > 0) {
    const atMs = await rateNow();
    const longest = Math.max(...rates.map((l) => l.periodMs!));
    const starts = (await trx(store.tables.rateStarts)
      .select('limiter', 'started_at')
      .whereIn('limiter', rates.map((l) => l.id))
      .where('started_at', '>', atMs - longest)) as Array<{ limiter: string; started_at: unknown }>;
    for (const l of rates) {
      const mine = starts.filter((s) => s.limiter === l.id).map((s) => Number(s.started_at));
      usage.set(l.id, l.limit - rateWindow(mine, l.limit, l.periodMs!, atMs).room);
    }
  }
  return usage;
}

type Candidate = FlowCandidate & { priority: number; runAt: number };

/** A claimed row as the limits read it. */
const candidateOf = (r: Record<string, unknown>): FlowCandidate => ({
  id: String(r.id),
  name: String(r.name),
  queue: r.queue === null || r.queue === undefined ? null : String(r.queue),
  key: r.concurrency_key === null || r.concurrency_key === undefined ? null : String(r.concurrency_key),
});

/** Keyed and limited tasks, admitted by their limits with keys taking turns. */
async function flowClaim(store: Store, a: ClaimArgs, want: number): Promise<Record<string, unknown>[]> {
  const plan = a.plan;
  const limitedNames = a.names.filter((n) => limitedName(plan, n));
  const skipPaused = [...plan.pausedQueues];
  const limitedQueues = [...plan.queueLimits.keys()].filter((q) => !plan.pausedQueues.has(q));
  const keyed = await keyedWaiting(store, plan);
  if (want <= 0 || (!keyed && limitedNames.length === 0 && limitedQueues.length === 0)) return [];
  const dir = a.ordering === 'ASC' ? 'asc' : 'desc';
  const sign = dir === 'asc' ? 1 : -1;
  const cols = ['id', 'name', 'queue', 'concurrency_key', 'priority', 'run_at'];
  // A chain only where the only limit is one per key (the worker asks for it only then).
  const chain = a.keyChain !== undefined && a.keyChain > 1 && onlyOnePerKey(plan, a) ? Math.floor(a.keyChain) : 1;
  const of = limitersOf(plan, chain);
  return store.tx(async (trx) => {
    // Every flow claim of every worker takes this lock first: usage read here stays true until
    // this transaction commits the claims counted against it.
    await lockFlow(trx, store.tables, a.nowMs);
    // Rate windows end at the flow time, read once: a start another claim dropped from its window
    // (or the prune deleted) since this worker read its clock is out of this window too.
    let rateNowMs: number | undefined;
    const rateNow = async () => (rateNowMs ??= await readFlowTime(trx, store.tables, Math.max(a.nowMs, a.now?.() ?? a.nowMs)));
    const base = () => dueBase(applyQueues(applyNames(trx(store.tables.tasks).select(cols), a.names), a, skipPaused), a);
    const sortCandidates = (list: Candidate[]) => list.sort((x, y) => sign * (x.priority - y.priority) || x.runAt - y.runAt || Number(x.id) - Number(y.id));
    const read = async (members: Knex.QueryBuilder[], known: readonly Candidate[] = []): Promise<Candidate[]> => {
      const found = new Map<string, Candidate>(known.map((c) => [c.id, c]));
      for (let i = 0; i < members.length; i += 100) {
        for (const r of (await store.dialect.unionAll(trx, members.slice(i, i + 100))) as Array<Record<string, unknown>>) {
          const id = String(r.id);
          found.set(id, { id, name: String(r.name), queue: r.queue === null ? null : String(r.queue), key: r.concurrency_key === null ? null : String(r.concurrency_key), priority: Number(r.priority), runAt: Number(r.run_at) });
        }
      }
      return sortCandidates([...found.values()]);
    };
    const admitted: Candidate[] = [];
    // Claimed in this transaction already: counted against their limits like running tasks.
    const count = (usage: Usage) => {
      for (const t of admitted) for (const l of of(t)) usage.set(l.id, (usage.get(l.id) ?? 0) + 1);
      return usage;
    };
    // Unkeyed tasks under a limit: per limited name and per limited queue, so a full limiter's
    // backlog cannot hide another's tasks. They take part in the first round of keys.
    let members: Knex.QueryBuilder[] = [];
    for (const n of limitedNames) members.push(base().whereNull('concurrency_key').where('name', n).orderBy(order(dir)).limit(want));
    for (const q of limitedQueues) members.push(base().whereNull('concurrency_key').where('queue', q).orderBy(order(dir)).limit(want));
    // Keys are looked at a window at a time, from the cursor on: when a window's keys admit fewer
    // tasks than wanted (their limits are full, or their tasks are in paused queues or of names
    // this worker does not run), the next window is looked at, up to MAX_KEYS_PER_CLAIM keys.
    const window = Math.min(MAX_KEYS_PER_CLAIM, Math.max(want * 4, 32));
    const seen = new Set<string>();
    let cursor = plan.keyCursor;
    let lastSeen: string | undefined;
    // Each key's first task is found by a seek correlated to the list of keys, in the index the
    // dialect names where the optimizer might scan instead (MariaDB).
    const seekFrom = store.dialect.keySeekSource?.(trx, store.tables.tasks);
    const firstOf = () => {
      const q = base().clearSelect().select('id').orderBy(order(dir)).limit(1);
      return seekFrom ? q.from(seekFrom) : q;
    };
    const keyDepth = keyLimitOf(plan, a.names);
    // What runs now, read once per claim (the lock keeps it true), often with the keys.
    let running: RunningRow[] | undefined;
    const runningNow = async () => (running ??= (await runningQuery(store, trx, plan, a.nowMs)) as RunningRow[]);
    for (const [n, l] of plan.taskLimits) if (l.concurrencyLimit) plan.keyedNames.add(n);
    for (;;) {
      let scanned: string[] = [];
      let firsts: Candidate[] = [];
      // When the last look found at least as many keys as this claim wants, it takes one task
      // per key (see perKey): the keys and their first tasks come in one statement (two when the
      // turn wraps past the last key), through the recursive walk (correlated seeks).
      const oneStatement = keyed && (keyDepth === 1 || plan.keysFound >= want - admitted.length);
      if (oneStatement) {
        // When the last look from the first key found all due keys within one window, look from
        // the first key again and start the turn after the cursor here: one statement, where a
        // look from the cursor would wrap past the last key into a second.
        const whole = plan.keysFit || cursor === null;
        const found = await keysWithFirsts(store, trx, whole ? null : cursor, !whole, window, a.nowMs, firstOf, runningQuery(store, trx, plan, a.nowMs), chain);
        running ??= found.running;
        if (whole) {
          plan.keysFit = found.keys.length < window;
          found.keys = rotate(found.keys, cursor);
        }
        ({ keys: scanned, firsts } = found);
      } else if (keyed) {
        scanned = await keysInTurn(store, trx, plan, cursor, window, a.nowMs);
      }
      const keys = scanned.filter((k) => !seen.has(k));
      // Turns take one task per key per round, so a claim admits about want ÷ keys of each key:
      // reading more of every key (a full `want` each) was most of a keyed claim's time. With one
      // per key, one statement finds each key's first task (a seek per key in the key index).
      const perKey = Math.min(keyDepth, Math.max(1, Math.ceil((want - admitted.length) / Math.max(1, keys.length))));
      if (keyed) plan.keysFound = scanned.length;
      const fresh = firsts.filter((c) => !seen.has(c.key!));
      for (const k of keys) seen.add(k);
      if (oneStatement && perKey === 1) {
        // Read above. (With fewer keys than the claim wants, each key is read deeper below.)
      } else if (perKey === 1 && keys.length > 0) {
        const ids = await firstOfEachKey(store, trx, keys, firstOf);
        if (ids.length > 0) members.push(base().whereIn('id', ids));
      } else {
        for (const k of keys) members.push(base().where('concurrency_key', k).orderBy(order(dir)).limit(perKey));
      }
      if (keys.length > 0) lastSeen = keys[keys.length - 1];
      if (members.length === 0 && fresh.length === 0 && keys.length === 0) break;
      if (members.length > 0 || fresh.length > 0) {
        let candidates = members.length > 0 ? await read(members, fresh) : sortCandidates(fresh);
        members = [];
        for (let deeper = false; ; deeper = true) {
          for (const c of candidates) if (c.key !== null) plan.keyedNames.add(c.name);
          const turns = takeTurns(candidates, cursor);
          const limiters = [...new Map(candidates.flatMap(of).map((l) => [l.id, l])).values()];
          const usage = count(await usageOf(store, trx, limiters, of, rateNow, { workerId: a.workerId, ended: a.ended, chain }, await runningNow()));
          const round = admit(turns.order, of, usage, want - admitted.length);
          admitted.push(...round.admitted);
          if (deeper || admitted.length >= want || plan.keyedNames.size < 2) break;
          // Limits per key are per task name, but keys are read across names: the tasks read
          // of a key may all be of names whose own limit for it is full, with another name's
          // task of the key behind them. Once keyed tasks of several names have been seen, such
          // keys are read again for the other names' tasks (a read of the key's backlog, so not
          // where one name alone carries keys).
          const full = new Map<string, Set<string>>();
          for (const h of round.held) {
            if (h.task.key === null || !isKeyLimit(h.by, h.task)) continue;
            const names = full.get(h.task.key) ?? new Set<string>();
            full.set(h.task.key, names.add(h.task.name));
          }
          if (full.size === 0) break;
          const depth = Math.max(1, Math.ceil((want - admitted.length) / full.size));
          candidates = await read([...full].map(([k, names]) => base().where('concurrency_key', k).whereNotIn('name', [...names]).orderBy(order(dir)).limit(depth)));
          if (candidates.length === 0) break;
        }
      }
      // Every due key was looked at (the scan came back short, or only with keys seen already).
      if (admitted.length >= want || scanned.length < window || keys.length === 0 || seen.size >= MAX_KEYS_PER_CLAIM) break;
      cursor = lastSeen ?? cursor;
    }
    // The next claim's turns start after the last key served now; when none was served, after
    // the last key looked at, so that the next claim looks further.
    const lastKey = [...admitted].reverse().find((t) => t.key !== null)?.key ?? lastSeen;
    if (lastKey !== undefined) plan.keyCursor = lastKey;
    if (admitted.length === 0) return [];
    // Tasks under a rate limit are claimed at the flow time their windows were counted at: their
    // claim time (started_at) is the start the limiter records.
    const rated = admitted.some((t) => of(t).some((l) => l.kind === 'rate'));
    const atMs = rated ? await rateNow() : a.nowMs;
    const set = atMs === a.nowMs ? a.set : { ...a.set, nowMs: atMs, leaseUntilMs: a.set.leaseUntilMs + atMs - a.nowMs };
    const claimed = await store.dialect.claim(trx, store.tables.tasks, trx(store.tables.tasks).select('id').whereIn('id', admitted.map((t) => t.id)).whereNull('locked_by'), set);
    const starts = claimed.flatMap((r) =>
      of(candidateOf(r))
        .filter((l) => l.kind === 'rate')
        .map((l) => ({ limiter: l.id, started_at: atMs })),
    );
    for (let i = 0; i < starts.length; i += 400) await trx(store.tables.rateStarts).insert(starts.slice(i, i + 400));
    // The starts that left their window count no more: each limiter used here drops its own
    // (through the limiter index), so a busy limiter keeps about `limit` rows. Rows of limiters no
    // longer used are swept by pruneRateStarts (store/queues.ts).
    const used = new Map(claimed.flatMap((r) => of(candidateOf(r)).filter((l) => l.kind === 'rate').map((l) => [l.id, l.periodMs!] as const)));
    for (const [id, periodMs] of used) await trx(store.tables.rateStarts).where('limiter', id).where('started_at', '<=', atMs - periodMs).del();
    if (starts.length > 0) await setFlowTime(trx, store.tables, atMs);
    return claimed;
  });
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

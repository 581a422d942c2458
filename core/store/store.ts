/**
 * The portable SQL, written once with knex. Every state change is one guarded statement (or one
 * transaction of them) keyed by task id and claim token, and its affected-row count is checked:
 * zero means another worker owns the task now, which the caller handles as an outcome.
 */
import type { Knex } from 'knex';
import { randomUUID } from 'node:crypto';
import type { Connection } from './connection.js';
import type { ClaimSet, Db, Dialect } from './dialects/dialect.js';
import type { UniformRows } from './dialects/insert-rows.js';
import { NotMigratedError } from '../errors.js';
import { lastErrorClass, newTaskRow, toCompletedRow, toTaskRow, type NewTask } from './rows.js';
import { applyBudget, claimTasks, emptyFlowPlan, type ClaimFilter, type FlowPlan, type RunBudget } from './claim.js';
import { splitByPriority } from './claim-priorities.js';
import { limitedName } from './claim-plan.js';
import { tablesFor, type Tables } from './tables.js';
import { deadWorkerLeases, type DeadWorkerLease } from './dead-workers.js';
import { storableRecord } from './storable.js';
import * as settle from './settle.js';
import type { CompleteOutcome, Completion, DeadWorkerGuard } from './settle.js';
import type { CompletedRow, ErrorRecord, TaskRow } from '../types.js';

export { tablesFor, type Tables, type ClaimFilter };
export type { Completion, CompleteOutcome, DeadWorkerGuard, Refusal } from './settle.js';

export interface ClaimRequest extends ClaimFilter {
  workerId: string;
  nowMs: number;
  /** The worker's clock, read again where a claim has waited (store/claim.ts ClaimArgs.now). */
  now?: () => number;
  leaseMs: number;
  limit: number;
  /** What the worker knows of paused queues and limits (none: nothing paused or limited). */
  flow?: FlowPlan;
  /** At most this many of the tasks claimed may be under flow control (keyed or limited); default `limit`. */
  flowLimit?: number;
  /** Claim only tasks whose run-time limit fits the time left (a duration run's end). */
  budget?: RunBudget;
  /** Only tasks whose priority ranks strictly above this one (in the filter's ordering). */
  above?: number;
  /**
   * Claim tokens of tasks whose attempts ended on this worker but whose results are not written
   * yet, by task id: they count against no concurrency limit of this worker's claims.
   */
  ended?: ReadonlyMap<string, string>;
  /**
   * Where the only limit is one task per key (onlyOnePerKey): up to this many tasks of a key no
   * other worker holds, for a worker that starts them one at a time.
   */
  keyChain?: number;
  /** The claim token (default: a fresh one): a caller that chose it can find the tasks of a claim whose answer it lost. */
  token?: string;
}

/** Claim order: priority (by the ordering), then run time, then id. Claims return rows in it. */
export function claimOrder(ordering: 'DESC' | 'ASC'): (a: TaskRow, b: TaskRow) => number {
  const sign = ordering === 'ASC' ? 1 : -1;
  return (a, b) => sign * (a.priority - b.priority) || a.runAt - b.runAt || Number(a.id) - Number(b.id);
}

const MAX_TX_RETRIES = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Store {
  readonly tables: Tables;
  readonly knex: Knex;
  readonly dialect: Dialect;

  constructor(
    readonly conn: Connection,
    readonly prefix: string,
    /** Failed-attempt records kept per task. */
    readonly errorsKept = 10,
  ) {
    this.tables = tablesFor(prefix);
    this.knex = conn.knex;
    this.dialect = conn.dialect;
  }

  /**
   * Runs `fn` in a transaction, again when the database reports a deadlock or SQLITE_BUSY. With
   * `db` (the caller's own transaction) it runs there, once: a retry is the caller's to make.
   */
  async tx<T>(fn: (trx: Knex.Transaction) => Promise<T>, db?: Db): Promise<T> {
    if (db) {
      if (!(db as Knex.Transaction).isTransaction) return this.retrying(() => (db as Knex).transaction(fn));
      return this.translate(async () => {
        await this.dialect.prepareForeignTransaction?.(db as Knex.Transaction);
        return fn(db as Knex.Transaction);
      });
    }
    return this.retrying(() => this.knex.transaction(fn));
  }

  /** Runs a statement (or transaction) again on deadlocks and busy errors, with jittered backoff. */
  async retrying<T>(op: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await op();
      } catch (err) {
        const kind = this.dialect.classifyError(err);
        if (kind === 'retry' && i < MAX_TX_RETRIES) {
          await sleep(Math.min(1000, 5 * 2 ** i) * (0.5 + Math.random()));
          continue;
        }
        throw this.wrap(err);
      }
    }
  }

  private async translate<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw this.wrap(err);
    }
  }

  /** A missing table becomes a NotMigratedError that says what to run. */
  wrap(err: unknown): unknown {
    if (this.dialect.classifyError(err) === 'missing-table') {
      return new NotMigratedError(
        `The bgtasks tables (prefix "${this.prefix}") do not exist in ${this.conn.spec.display}. Run \`bgtasks migrate\` (or process-tasks --migrate, or migrate(knex) from code).`,
        { cause: err },
      );
    }
    return err;
  }

  // ── Enqueue ────────────────────────────────────────────────────────────────────────────────

  /** Inserts new tasks (chunked, in one transaction when there are several) and returns their ids. */
  async insertTasks(tasks: readonly NewTask[] | UniformRows, db?: Db): Promise<string[]> {
    const rows = Array.isArray(tasks) ? (tasks as readonly NewTask[]).map(newTaskRow) : (tasks as UniformRows);
    if (Array.isArray(rows) && rows.length === 1 && !db) {
      return this.retrying(() => this.dialect.insertReturningIds(this.knex, this.tables.tasks, rows));
    }
    // Several rows: the dialect chunks them into multi-row statements, in one transaction.
    return this.tx((trx) => this.dialect.insertReturningIds(trx, this.tables.tasks, rows), db);
  }

  /**
   * Serialises transactions on `key` until commit: an upsert takes a row lock on every database
   * (and SQLite's write lock, as the transaction's first statement should).
   */
  async lockKey(trx: Knex.Transaction, key: string, nowMs: number): Promise<void> {
    await trx(this.tables.locks).insert({ key, locked_at: nowMs }).onConflict('key').merge(['locked_at']);
  }

  async countPendingInQueue(db: Db, queue: string): Promise<number> {
    const [row] = (await db(this.tables.tasks).where('queue', queue).count({ n: '*' })) as Array<{ n: unknown }>;
    return Number(row?.n ?? 0);
  }

  // ── Claim and leases ───────────────────────────────────────────────────────────────────────

  private applyFilter(q: Knex.QueryBuilder, f: ClaimFilter): void {
    q.whereIn('name', f.names as string[]);
    if (f.queues) q.whereIn('queue', f.queues as string[]);
    if (f.excludeQueues && f.excludeQueues.length > 0) {
      const ex = f.excludeQueues as string[];
      q.where((b) => b.whereNull('queue').orWhereNotIn('queue', ex));
    }
  }

  /**
   * Claims up to `limit` due tasks: counts the attempt and takes a lease. Paused queues are
   * skipped and limits obeyed (store/claim.ts). Sorted in claim order.
   */
  async claim(req: ClaimRequest): Promise<TaskRow[]> {
    if (req.names.length === 0 || req.limit <= 0) return [];
    const set: ClaimSet = {
      workerId: req.workerId,
      token: req.token ?? randomUUID(),
      nowMs: req.nowMs,
      leaseUntilMs: req.nowMs + req.leaseMs,
    };
    // A claim without a plan kept across claims does not walk the priorities (claim-priorities.ts):
    // what the walk finds would be lost, and the walk would outlive the claim.
    return claimTasks(this, { ...req, set, plan: req.flow ?? { ...emptyFlowPlan(), prioritiesAt: Infinity } });
  }

  /**
   * Unlocked tasks, unkeyed and keyed apart, each through an index of its own: the unkeyed ones
   * split by `priorities` (store/claim-priorities.ts; the walk's findings, from the worker's flow
   * plan), so bounded by now; the keyed ones all read (their index orders them by key first). One
   * read of both scanned the table: beside a million unkeyed tasks not yet due, 0.7-0.8 s on
   * MariaDB and 80-90 ms on PostgreSQL, where the two reads take 1-1.5 ms.
   */
  private dueParts(priorities: readonly number[], shape: (q: Knex.QueryBuilder) => void): Knex.QueryBuilder[] {
    return [false, true].map((keyed) => {
      const q = this.knex(this.tables.tasks).whereNull('locked_by');
      if (keyed) q.whereNotNull('concurrency_key');
      else splitByPriority(q.whereNull('concurrency_key'), priorities);
      shape(q);
      return q;
    });
  }

  /** Filters `q` to what a worker of filter `f` may claim, paused queues skipped. */
  private claimable(q: Knex.QueryBuilder, f: ClaimFilter, nowMs: number, paused: ReadonlySet<string>): void {
    q.where('run_at', '<=', nowMs);
    this.applyFilter(q, f);
    if (paused.size > 0) q.where((b) => b.whereNull('queue').orWhereNotIn('queue', [...paused]));
  }

  /**
   * Whether a due, unlocked task this worker could claim ranks strictly above `priority`: a read
   * (no lock taken), so that a worker can check cheaply before it starts a task it claimed ahead.
   */
  async outranked(f: ClaimFilter, nowMs: number, priority: number, paused: ReadonlySet<string> = new Set(), priorities: readonly number[] = []): Promise<boolean> {
    if (f.names.length === 0) return false;
    // The unkeyed part in priority order is one seek however many due tasks rank below. (One
    // look at both read every due task of a large backlog, the claim indexes being partial on
    // the key.)
    const parts = this.dueParts(priorities, (q) => {
      this.claimable(q.select('id'), f, nowMs, paused);
      q.where('priority', f.ordering === 'ASC' ? '<' : '>', priority).limit(1);
    });
    const rows = await this.retrying(() => this.dialect.unionAll(this.knex, parts));
    return rows.length > 0;
  }

  /** A non-locking count of due, unlocked tasks this worker could claim (SKIP LOCKED can't tell). */
  async countReady(f: ClaimFilter, nowMs: number, paused: ReadonlySet<string> = new Set(), budget?: RunBudget, priorities: readonly number[] = []): Promise<number> {
    if (f.names.length === 0) return 0;
    const parts = this.dueParts(priorities, (q) => {
      this.claimable(q, f, nowMs, paused);
      // A paused queue's tasks will not run before it is resumed, and a task whose run-time limit
      // does not fit the run budget will not fit it later: neither keeps a batch going.
      applyBudget(q, budget);
      q.count({ n: '*' });
    });
    const rows = await this.retrying(() => this.dialect.unionAll(this.knex, parts));
    return rows.reduce((sum, r) => sum + Number(r.n ?? 0), 0);
  }

  /**
   * Of those countReady counts, the tasks under no flow limit (no concurrency key, a name and a
   * queue without limits): the ones a claim takes whenever it has room. A batch run that finds
   * none, and could claim none of the rest for a while, ends (see Claimer.batchLeft).
   */
  async countReadyUnlimited(f: ClaimFilter, nowMs: number, plan: FlowPlan, budget?: RunBudget, priorities: readonly number[] = []): Promise<number> {
    const names = f.names.filter((n) => !limitedName(plan, n));
    if (names.length === 0) return 0;
    const q = splitByPriority(this.knex(this.tables.tasks).whereNull('locked_by').whereNull('concurrency_key'), priorities);
    this.claimable(q, { ...f, names }, nowMs, plan.pausedQueues);
    const limited = [...plan.queueLimits.keys()];
    if (limited.length > 0) q.where((b) => b.whereNull('queue').orWhereNotIn('queue', limited));
    applyBudget(q, budget);
    const row = (await this.retrying(() => q.count({ n: '*' }).first())) as { n?: unknown } | undefined;
    return Number(row?.n ?? 0);
  }

  /** Due, unlocked tasks whose names this worker has not registered: name → count. */
  async unknownReady(names: readonly string[], nowMs: number, priorities: readonly number[] = []): Promise<Map<string, number>> {
    const parts = this.dueParts(priorities, (q) => {
      q.select('name').count({ n: '*' }).where('run_at', '<=', nowMs).groupBy('name');
      if (names.length > 0) q.whereNotIn('name', names as string[]);
    });
    const out = new Map<string, number>();
    for (const r of await this.retrying(() => this.dialect.unionAll(this.knex, parts))) out.set(String(r.name), (out.get(String(r.name)) ?? 0) + Number(r.n));
    return out;
  }

  /**
   * Renews the leases of `tasks` held by this worker. Returns the tokens whose lease is gone
   * (another worker claimed the task, or it was deleted), those whose cancellation was requested,
   * and those taken back: a lease that expired and was recovered by some worker's recovery pass,
   * but that no worker has claimed since (the claim token is still this worker's), is taken back
   * as the claim left it (see retake). Only an outage or a stall leaves any; the usual beat is one
   * UPDATE and one SELECT.
   */
  async heartbeat(workerId: string, tasks: readonly TaskRow[], leaseUntilMs: number): Promise<{ lost: string[]; cancelled: string[]; retaken: string[] }> {
    if (tasks.length === 0) return { lost: [], cancelled: [], retaken: [] };
    const ids = tasks.map((t) => t.id);
    const tokens = tasks.map((t) => t.claimToken!);
    const byId = this.dialect.byIdSource?.(this.knex, this.tables.tasks) ?? this.tables.tasks;
    await this.retrying(() =>
      this.knex(byId)
        .whereIn('id', ids)
        .whereIn('claim_token', tokens)
        // PostgreSQL: a null-safe comparison, which does not imply `locked_by IS NOT NULL`, so
        // the planner cannot read the partial lease index instead of the primary key (it read
        // all of it, 0.6 s a renewal, when its statistics said the table was nearly empty).
        .where((b) => (this.dialect.name === 'postgres' ? b.whereRaw('locked_by IS NOT DISTINCT FROM ?', [workerId]) : b.where('locked_by', workerId)))
        .update({ locked_until: leaseUntilMs }),
    );
    const rows = (await this.retrying(() =>
      this.knex(this.tables.tasks).select('claim_token', 'cancel_requested', 'locked_by').whereIn('id', ids).whereIn('claim_token', tokens),
    )) as Array<{ claim_token: string; cancel_requested: unknown; locked_by: unknown }>;
    const held = new Set<string>();
    const retaken: string[] = [];
    for (const r of rows) {
      if (r.locked_by !== null) {
        held.add(r.claim_token);
        continue;
      }
      const task = tasks.find((t) => t.claimToken === r.claim_token)!;
      if (await this.retake(workerId, task, leaseUntilMs)) {
        held.add(r.claim_token);
        retaken.push(r.claim_token);
      }
    }
    return {
      lost: tokens.filter((t) => !held.has(t)),
      cancelled: rows.filter((r) => held.has(r.claim_token) && (r.cancel_requested === true || Number(r.cancel_requested) === 1)).map((r) => r.claim_token),
      retaken,
    };
  }

  /**
   * Takes back a claim that lease recovery made READY but nobody claimed since: the row becomes
   * what the claim made it (run time, error history, start), with a fresh lease. The recovery's
   * `WorkerLostError` record goes, because the run it calls lost was not: its worker still holds
   * it. False if another worker claimed the task meanwhile (a claim writes a new token).
   */
  private async retake(workerId: string, task: TaskRow, leaseUntilMs: number): Promise<boolean> {
    const n = await this.retrying(() =>
      this.knex(this.tables.tasks)
        .where('id', task.id)
        .where('claim_token', task.claimToken!)
        .whereNull('locked_by')
        .update({
          locked_by: workerId,
          locked_at: task.lockedAt,
          locked_until: leaseUntilMs,
          run_at: task.runAt,
          last_error: task.lastError,
          last_error_class: lastErrorClass(task.errors),
          errors: task.errors.length > 0 ? JSON.stringify(task.errors) : null,
        }),
    );
    return n === 1;
  }

  // ── Settle (the verbs are in settle.ts) ───────────────────────────────────────────────────

  /** Adds a record made storable (see storable.ts), trimming the history to the newest `errorsKept`. */
  withError(task: TaskRow, record: ErrorRecord): { errors: ErrorRecord[]; lastError: string } {
    const stored = storableRecord(record);
    const errors = [...task.errors, stored].slice(-this.errorsKept);
    return { errors, lastError: stored.stack };
  }

  /** One round trip: tells a database that is away from one that refused a statement. */
  async ping(): Promise<void> {
    await this.knex.raw('SELECT 1');
  }

  /**
   * Claims under a live lease whose worker's registry heartbeat is stale: candidates for recovery
   * once the caller knows the worker's process is gone, or finds the worker silent.
   */
  deadWorkerLeases(nowMs: number, limit?: number): Promise<DeadWorkerLease[]> {
    return this.retrying(() => deadWorkerLeases(this.knex, this.tables, nowMs, limit));
  }

  /**
   * Running tasks whose lease expired before `nowMs` (their worker stopped renewing it), oldest
   * first; only those of worker `lockedBy`, or only those of other workers (`notLockedBy`); only
   * those that expired at or after `since`.
   */
  async expiredLeases(nowMs: number, o: { limit?: number; lockedBy?: string; notLockedBy?: string; since?: number } = {}): Promise<TaskRow[]> {
    const q = this.knex(this.tables.tasks).select('*').whereNotNull('locked_by').where('locked_until', '<', nowMs);
    if (o.since !== undefined) q.where('locked_until', '>=', o.since);
    if (o.lockedBy !== undefined) q.where('locked_by', o.lockedBy);
    if (o.notLockedBy !== undefined) q.whereNot('locked_by', o.notLockedBy);
    const rows = await this.retrying(() => q.orderBy('locked_until').limit(o.limit ?? 100));
    return (rows as Record<string, unknown>[]).map(toTaskRow);
  }

  /**
   * The tasks a claim took, while this worker still holds them (worker/unanswered-claims.ts): each
   * row's token is the claim's token, a colon and the task's id (dialects' claim).
   * An index read: MySQL/MariaDB's claim index leads with `locked_by`, PostgreSQL's and SQLite's
   * lease index holds only locked tasks.
   */
  async claimedWith(workerId: string, token: string): Promise<TaskRow[]> {
    const q = this.knex(this.tables.tasks).select('*').where('locked_by', workerId).where('claim_token', 'like', `${token}:%`);
    return ((await this.retrying(() => q)) as Record<string, unknown>[]).map(toTaskRow);
  }

  completeMany(items: readonly Completion[], nowMs: number): Promise<CompleteOutcome> {
    return settle.completeMany(this, items, nowMs);
  }

  snooze(task: TaskRow, runAt: number): Promise<'ok' | 'lost' | 'cancelled'> {
    return settle.snooze(this, task, runAt);
  }

  retry(task: TaskRow, runAt: number, record: ErrorRecord): Promise<'ok' | 'lost' | 'cancelled'> {
    return settle.retry(this, task, runAt, record);
  }

  recoverLease(task: TaskRow, runAt: number, record: ErrorRecord, nowMs: number, o: { deadWorker?: DeadWorkerGuard } = {}): Promise<'ok' | 'lost' | 'cancelled'> {
    return settle.recoverLease(this, task, runAt, record, nowMs, o);
  }

  requestCancel(task: TaskRow): Promise<boolean> {
    return settle.requestCancel(this, task);
  }

  failReady(task: TaskRow, nowMs: number, record: ErrorRecord): Promise<boolean> {
    return settle.failReady(this, task, nowMs, record);
  }

  fail(task: TaskRow, opts: settle.FailOptions): Promise<boolean> {
    return settle.fail(this, task, opts);
  }

  release(tasks: readonly TaskRow[], opts: { runAt?: number } = {}): Promise<number> {
    return settle.release(this, tasks, opts);
  }

  // ── Reading ────────────────────────────────────────────────────────────────────────────────

  async findPending(id: string, db: Db = this.knex): Promise<TaskRow | null> {
    const row = (await db(this.tables.tasks).where('id', id).first()) as Record<string, unknown> | undefined;
    return row ? toTaskRow(row) : null;
  }

  async findCompleted(id: string, db: Db = this.knex): Promise<CompletedRow | null> {
    const row = (await db(this.tables.completed).where('task_id', id).first()) as Record<string, unknown> | undefined;
    return row ? toCompletedRow(row) : null;
  }
}


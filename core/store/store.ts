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
import { completedRow, lastErrorClass, newTaskRow, successorOf, toCompletedRow, toTaskRow, type Finish, type NewTask } from './rows.js';
import { applyBudget, claimTasks, emptyFlowPlan, type ClaimFilter, type FlowPlan, type RunBudget } from './claim.js';
import { tablesFor, type Tables } from './tables.js';
import { deadWorkerLeases, staleWorkerIds, type DeadWorkerLease } from './dead-workers.js';

export { tablesFor, type Tables, type ClaimFilter };
import { planSuccessStatements, storableRecord } from './storable.js';
import type { CompletedRow, ErrorRecord, TaskRow } from '../types.js';

export interface ClaimRequest extends ClaimFilter {
  workerId: string;
  nowMs: number;
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
}

/** Claim order: priority (by the ordering), then run time, then id. Claims return rows in it. */
export function claimOrder(ordering: 'DESC' | 'ASC'): (a: TaskRow, b: TaskRow) => number {
  const sign = ordering === 'ASC' ? 1 : -1;
  return (a, b) => sign * (a.priority - b.priority) || a.runAt - b.runAt || Number(a.id) - Number(b.id);
}

/** A success waiting to be written. */
export interface Completion {
  task: TaskRow;
  finishedAt: number;
  returnValue: string | null;
  successorAt: number | null;
}

/** A success the database cannot store (recorded as the task's failure instead), and why. */
export interface Refusal {
  item: Completion;
  reason: string;
}

export interface CompleteOutcome {
  done: Completion[];
  lost: Completion[];
  refused: Refusal[];
  /** Not written because a statement failed with `error`. */
  unwritten: Completion[];
  error: unknown;
}

/** Rows per multi-row INSERT: under every database's bind-parameter limit. */
const INSERT_CHUNK = 400;
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
      token: randomUUID(),
      nowMs: req.nowMs,
      leaseUntilMs: req.nowMs + req.leaseMs,
    };
    return claimTasks(this, { ...req, set, plan: req.flow ?? emptyFlowPlan() });
  }

  /**
   * Whether a due, unlocked task this worker could claim ranks strictly above `priority`: a read
   * (no lock taken), so that a worker can check cheaply before it starts a task it claimed ahead.
   */
  async outranked(f: ClaimFilter, nowMs: number, priority: number, paused: ReadonlySet<string> = new Set()): Promise<boolean> {
    if (f.names.length === 0) return false;
    const q = this.knex(this.tables.tasks).select('id').whereNull('locked_by').where('run_at', '<=', nowMs);
    this.applyFilter(q, f);
    if (paused.size > 0) q.where((b) => b.whereNull('queue').orWhereNotIn('queue', [...paused]));
    q.where('priority', f.ordering === 'ASC' ? '<' : '>', priority).limit(1);
    const rows = (await this.retrying(() => q)) as unknown[];
    return rows.length > 0;
  }

  /** A non-locking count of due, unlocked tasks this worker could claim (SKIP LOCKED can't tell). */
  async countReady(f: ClaimFilter, nowMs: number, paused: ReadonlySet<string> = new Set(), budget?: RunBudget): Promise<number> {
    if (f.names.length === 0) return 0;
    const q = this.knex(this.tables.tasks).whereNull('locked_by').where('run_at', '<=', nowMs);
    this.applyFilter(q, f);
    // A paused queue's tasks will not run before it is resumed, and a task whose run-time limit
    // does not fit the run budget will not fit it later: neither keeps a batch going.
    if (paused.size > 0) q.where((b) => b.whereNull('queue').orWhereNotIn('queue', [...paused]));
    applyBudget(q, budget);
    const [row] = (await this.retrying(() => q.count({ n: '*' }))) as Array<{ n: unknown }>;
    return Number(row?.n ?? 0);
  }

  /** Due, unlocked tasks whose names this worker has not registered: name → count. */
  async unknownReady(names: readonly string[], nowMs: number): Promise<Map<string, number>> {
    const q = this.knex(this.tables.tasks)
      .select('name')
      .count({ n: '*' })
      .whereNull('locked_by')
      .where('run_at', '<=', nowMs)
      .groupBy('name');
    if (names.length > 0) q.whereNotIn('name', names as string[]);
    const rows = (await this.retrying(() => q)) as Array<{ name: string; n: unknown }>;
    return new Map(rows.map((r) => [r.name, Number(r.n)]));
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
    await this.retrying(() =>
      this.knex(this.tables.tasks)
        .whereIn('id', ids)
        .whereIn('claim_token', tokens)
        .where('locked_by', workerId)
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

  // ── Settle ─────────────────────────────────────────────────────────────────────────────────

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
   * Completes successes: deletes the pending rows (guarded by claim token), writes the completed
   * rows and the successors of recurring tasks, a bounded number of bytes per statement. Returns
   * those whose lease was lost (nothing written for them), those the database cannot store
   * (nothing written either: the caller records them failed), and, when a statement failed, its
   * error and the successes it and the statements after it would have written (those before it
   * are written: a failure part-way is not thrown, so that they are not written twice).
   */
  async completeMany(items: readonly Completion[], nowMs: number): Promise<CompleteOutcome> {
    const out: CompleteOutcome = { done: [], lost: [], refused: [], unwritten: [], error: null };
    if (items.length === 0) return out;
    const plan = await planSuccessStatements(items, this.dialect, this.knex);
    for (const r of plan.refused) out.refused.push({ item: r.item, reason: r.reason });
    // Plain successes: one server-side copy per statement. Recurring ones also insert a successor.
    const statements = plan.statements.map((chunk) => ({ chunk, recurring: chunk[0]!.successorAt !== null }));
    for (let i = 0; i < statements.length; i++) {
      const { chunk, recurring } = statements[i]!;
      try {
        const r = recurring ? await this.completeWithSuccessors(chunk, nowMs) : await this.completePlain(chunk, nowMs);
        out.done.push(...r.done);
        out.lost.push(...r.lost);
      } catch (err) {
        out.error = err;
        out.unwritten = statements.slice(i).flatMap((s) => s.chunk);
        break;
      }
    }
    return out;
  }

  /** Successes without a successor: one server-side copy (the dialect's), else one by one. */
  private async completePlain(chunk: readonly Completion[], nowMs: number): Promise<{ done: Completion[]; lost: Completion[] }> {
    const ids = await this.retrying(() =>
      this.dialect.completeMany(
        this.knex,
        this.tables,
        chunk.map((c) => ({ id: c.task.id, token: c.task.claimToken!, finishedAt: c.finishedAt, returnValue: c.returnValue })),
      ),
    );
    if (ids === null) return this.completeWithSuccessors(chunk, nowMs);
    const set = new Set(ids);
    const done: Completion[] = [];
    const lost: Completion[] = [];
    for (const c of chunk) (set.has(c.task.id) ? done : lost).push(c);
    return { done, lost };
  }

  /** Completes with the rows built here (and successors inserted), in one transaction. */
  private async completeWithSuccessors(items: readonly Completion[], nowMs: number): Promise<{ done: Completion[]; lost: Completion[] }> {
    try {
      await this.tx(async (trx) => {
        const guarded = await this.guardSuccessors(trx, items, nowMs);
        const n = await trx(this.tables.tasks)
          .whereIn('id', items.map((c) => c.task.id))
          .whereIn('claim_token', items.map((c) => c.task.claimToken!))
          .del();
        if (n !== items.length) throw new LostLeases();
        await this.writeFinished(trx, guarded.map((c) => [c.task, this.finishOf(c)] as const), nowMs, guarded);
      });
      return { done: [...items], lost: [] };
    } catch (err) {
      if (!(err instanceof LostLeases)) throw err;
    }
    // Some lease was lost: settle one by one to learn which.
    const done: Completion[] = [];
    const lost: Completion[] = [];
    for (const c of items) {
      const ok = await this.tx(async (trx) => {
        const [g] = await this.guardSuccessors(trx, [c], nowMs);
        if (!(await this.deleteClaimed(trx, c.task))) return false;
        await this.writeFinished(trx, [[g!.task, this.finishOf(g!)]], nowMs, [g!]);
        return true;
      });
      (ok ? done : lost).push(c);
    }
    return { done, lost };
  }

  /**
   * Run first in a transaction that writes successors of recurring tasks. It takes their hashes'
   * locks, the ones enqueues take (lockKey), so a dedupe action and the end of a run never
   * interleave; on SQLite the upsert is also the write a write transaction must begin with. It
   * then reads each recurrence's stored end, which an enqueue with replaceExisting moves to the
   * task's own slot while it runs (core/store/enqueue.ts endChains), and drops the successors of
   * ended chains. Returns the items with the tasks as stored.
   */
  private async guardSuccessors<T extends { task: TaskRow; successorAt: number | null }>(trx: Knex.Transaction, items: readonly T[], nowMs: number): Promise<T[]> {
    const recurring = items.filter((i) => i.successorAt !== null);
    if (recurring.length === 0) return [...items];
    // Sorted: two transactions take the locks they share in one order, so never deadlock on them.
    for (const hash of [...new Set(recurring.map((i) => i.task.hash))].sort()) await this.lockKey(trx, `hash:${hash}`, nowMs);
    const rows = (await trx(this.tables.tasks)
      .select('id', 'repeat_until')
      .whereIn('id', recurring.map((i) => i.task.id))) as Array<{ id: unknown; repeat_until: unknown }>;
    const until = new Map(rows.map((r) => [String(r.id), r.repeat_until === null || r.repeat_until === undefined ? null : Number(r.repeat_until)]));
    return items.map((i) => {
      const stored = until.get(i.task.id);
      if (i.successorAt === null || stored === undefined) return i;
      const task = stored === i.task.repeatUntil ? i.task : { ...i.task, repeatUntil: stored };
      return { ...i, task, successorAt: stored !== null && i.successorAt >= stored ? null : i.successorAt };
    });
  }

  private finishOf(c: Completion): Finish {
    return {
      finishedAt: c.finishedAt,
      failedAt: null,
      returnValue: c.returnValue,
      lastError: c.task.lastError,
      errors: c.task.errors,
      attempts: c.task.attempts,
    };
  }

  private async writeFinished(
    trx: Knex.Transaction,
    finished: ReadonlyArray<readonly [TaskRow, Finish]>,
    nowMs: number,
    successors: ReadonlyArray<{ task: TaskRow; successorAt: number | null }>,
  ): Promise<void> {
    const rows = finished.map(([t, f]) => completedRow(t, f));
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await trx(this.tables.completed).insert(rows.slice(i, i + INSERT_CHUNK));
    }
    const next = successors.filter((s) => s.successorAt !== null).map((s) => newTaskRow(successorOf(s.task, s.successorAt!, nowMs)));
    if (next.length > 0) await this.dialect.insertReturningIds(trx, this.tables.tasks, next);
  }

  private async deleteClaimed(trx: Db, task: TaskRow): Promise<boolean> {
    const n = await trx(this.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!).del();
    return n === 1;
  }

  /**
   * Puts a snoozed task back to READY at `runAt`: lease cleared, the attempt given back, one more
   * snooze counted, no error. `lost` if the lease is gone; `cancelled` if a cancellation was
   * requested meanwhile (the caller fails it instead: a snooze never swallows a cancel request).
   */
  async snooze(task: TaskRow, runAt: number): Promise<'ok' | 'lost' | 'cancelled'> {
    const q = this.knex(this.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!);
    const n = await this.retrying(() =>
      q
        .clone()
        .where('cancel_requested', false)
        .update({
          run_at: runAt,
          locked_by: null,
          claim_token: null,
          locked_at: null,
          locked_until: null,
          attempts: this.knex.raw('CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END'),
          snoozes: this.knex.raw('snoozes + 1'),
        }),
    );
    if (n === 1) return 'ok';
    const still = (await this.retrying(() => q.clone().select('cancel_requested').first())) as { cancel_requested: unknown } | undefined;
    return still && (still.cancel_requested === true || Number(still.cancel_requested) === 1) ? 'cancelled' : 'lost';
  }

  /**
   * Puts a failed attempt back as ready at `runAt`, with its error. `lost` if the lease is gone;
   * `cancelled` if a cancellation was requested meanwhile (the caller then fails it instead, so a
   * retry never swallows a cancel request).
   */
  async retry(task: TaskRow, runAt: number, record: ErrorRecord): Promise<'ok' | 'lost' | 'cancelled'> {
    const { errors, lastError } = this.withError(task, record);
    const q = this.knex(this.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!);
    return this.readyGuarded(q, {
      run_at: runAt,
      locked_by: null,
      claim_token: null,
      locked_at: null,
      locked_until: null,
      last_error: lastError,
      last_error_class: lastErrorClass(errors),
      errors: JSON.stringify(errors),
    });
  }

  /**
   * Makes a task whose lease expired before `nowMs` READY at `runAt`, with the record of the lost
   * run, without destroying the claim: the lease goes (`locked_by`, `locked_until`), so any worker
   * may claim the task, but the claim token and start time stay. Until a new claim writes a new
   * token, the worker that held the lease can still record its result (every settle is fenced on
   * id and claim token) or take the lease back at its next heartbeat (see retake): a worker cut
   * off by an outage longer than `lockTimeout` keeps its work when nobody re-ran it meanwhile.
   */
  async recoverLease(task: TaskRow, runAt: number, record: ErrorRecord, nowMs: number, o: { deadWorker?: boolean } = {}): Promise<'ok' | 'lost' | 'cancelled'> {
    const { errors, lastError } = this.withError(task, record);
    const q = this.knex(this.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!).whereNotNull('locked_by');
    this.whereRecoverable(q, nowMs, o.deadWorker === true);
    return this.readyGuarded(q, {
      run_at: runAt,
      locked_by: null,
      locked_until: null,
      last_error: lastError,
      last_error_class: lastErrorClass(errors),
      errors: JSON.stringify(errors),
    });
  }

  /**
   * The recovery guard: the lease ran out before `nowMs`, or (`deadWorker`) its worker's registry
   * heartbeat is stale at `nowMs` (see dead-workers.ts): a worker that beat again meanwhile keeps
   * its tasks.
   */
  private whereRecoverable(q: Knex.QueryBuilder, nowMs: number, deadWorker: boolean): void {
    if (!deadWorker) {
      q.where('locked_until', '<', nowMs);
      return;
    }
    q.where((w) => w.where('locked_until', '<', nowMs).orWhereIn('locked_by', staleWorkerIds(this.knex, this.tables, nowMs)));
  }

  /**
   * Claims under a live lease whose worker's registry heartbeat is stale: candidates for recovery
   * once the caller knows the worker's process is gone.
   */
  deadWorkerLeases(nowMs: number, limit?: number): Promise<DeadWorkerLease[]> {
    return this.retrying(() => deadWorkerLeases(this.knex, this.tables, nowMs, limit));
  }

  /** Applies `set` to the row `q` guards unless a cancel was requested: ok, cancelled or lost. */
  private async readyGuarded(q: Knex.QueryBuilder, set: Record<string, unknown>): Promise<'ok' | 'lost' | 'cancelled'> {
    const n = await this.retrying(() => q.clone().where('cancel_requested', false).update(set));
    if (n === 1) return 'ok';
    const still = (await this.retrying(() => q.clone().select('cancel_requested').first())) as { cancel_requested: unknown } | undefined;
    return still && (still.cancel_requested === true || Number(still.cancel_requested) === 1) ? 'cancelled' : 'lost';
  }

  /**
   * Asks the worker running this claim to abort it (seen at its next heartbeat). Not once lease
   * recovery has taken the lease away: nobody would hear the request, so the caller reads the
   * task again and finds it READY.
   */
  async requestCancel(task: TaskRow): Promise<boolean> {
    const n = await this.retrying(() =>
      this.knex(this.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!).whereNotNull('locked_by').update({ cancel_requested: true }),
    );
    return n === 1;
  }

  /** Fails a READY (unclaimed) task for good, e.g. a cancelled one. False if it was claimed meanwhile. */
  async failReady(task: TaskRow, nowMs: number, record: ErrorRecord): Promise<boolean> {
    const { errors, lastError } = this.withError(task, record);
    return this.tx(async (trx) => {
      if ((await trx(this.tables.tasks).where('id', task.id).whereNull('locked_by').del()) !== 1) return false;
      const finish: Finish = { finishedAt: nowMs, failedAt: nowMs, returnValue: null, lastError, errors, attempts: task.attempts };
      await this.writeFinished(trx, [[{ ...task, lockedBy: null, lockedAt: null }, finish]], nowMs, []);
      return true;
    });
  }

  /**
   * Fails a task for good: moves it to the completed table with its error (and schedules the
   * successor of a recurring task). False if the lease was lost.
   */
  async fail(
    task: TaskRow,
    opts: { nowMs: number; record: ErrorRecord; successorAt: number | null; attempts: number; expiredLeaseBefore?: number; deadWorker?: boolean },
  ): Promise<boolean> {
    const { errors, lastError } = this.withError(task, opts.record);
    return this.tx(async (trx) => {
      const [g] = await this.guardSuccessors(trx, [{ task, successorAt: opts.successorAt }], opts.nowMs);
      const q = trx(this.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!);
      if (opts.expiredLeaseBefore !== undefined) this.whereRecoverable(q, opts.expiredLeaseBefore, opts.deadWorker === true);
      if ((await q.del()) !== 1) return false;
      const finish: Finish = {
        finishedAt: opts.nowMs,
        failedAt: opts.nowMs,
        returnValue: null,
        lastError,
        errors,
        attempts: opts.attempts,
      };
      await this.writeFinished(trx, [[g!.task, finish]], opts.nowMs, [g!]);
      return true;
    });
  }

  /**
   * Gives claimed tasks back: lease cleared, attempt returned, ready at once (or, with `runAt`, not
   * due before then: claimed tasks were due, so it only moves their run time later). Returns how many.
   */
  async release(tasks: readonly TaskRow[], opts: { runAt?: number } = {}): Promise<number> {
    if (tasks.length === 0) return 0;
    return this.retrying(() =>
      this.knex(this.tables.tasks)
        .whereIn('id', tasks.map((t) => t.id))
        .whereIn('claim_token', tasks.map((t) => t.claimToken!))
        .update({
          locked_by: null,
          claim_token: null,
          locked_at: null,
          locked_until: null,
          attempts: this.knex.raw('CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END'),
          ...(opts.runAt === undefined ? {} : { run_at: opts.runAt }),
        }),
    );
  }

  /**
   * Running tasks whose lease expired before `nowMs` (their worker stopped renewing it), oldest
   * first; only those of worker `lockedBy`, or only those of other workers (`notLockedBy`).
   */
  async expiredLeases(nowMs: number, o: { limit?: number; lockedBy?: string; notLockedBy?: string } = {}): Promise<TaskRow[]> {
    const q = this.knex(this.tables.tasks).select('*').whereNotNull('locked_by').where('locked_until', '<', nowMs);
    if (o.lockedBy !== undefined) q.where('locked_by', o.lockedBy);
    if (o.notLockedBy !== undefined) q.whereNot('locked_by', o.notLockedBy);
    const rows = await this.retrying(() => q.orderBy('locked_until').limit(o.limit ?? 100));
    return (rows as Record<string, unknown>[]).map(toTaskRow);
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

class LostLeases extends Error {}

/**
 * The settle verbs: a claimed task's end written as one guarded statement (or one transaction of
 * them) fenced by its id and claim token: successes moved to the completed table (with the
 * successors of recurring tasks), failures, retries, snoozes, releases, lease recoveries and
 * cancel requests. Each checks its affected-row count: zero means the lease is gone, an outcome the
 * caller handles. Store (store.ts) exposes them as its methods.
 */
import type { Knex } from 'knex';
import type { Db } from './dialects/dialect.js';
import type { ClaimStore } from './claim.js';
import { completedRow, lastErrorClass, newTaskRow, successorOf, type Finish } from './rows.js';
import { silentWorkerIds, staleWorkerIds } from './dead-workers.js';
import { planSuccessStatements } from './storable.js';
import type { ErrorRecord, TaskRow } from '../types.js';

/** What settling needs of the store: what a claim needs (claim.ts), the error history rule, and the enqueues' lock rows. */
export interface SettleStore extends ClaimStore {
  withError(task: TaskRow, record: ErrorRecord): { errors: ErrorRecord[]; lastError: string };
  lockKey(trx: Knex.Transaction, key: string, nowMs: number): Promise<void>;
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

export interface FailOptions {
  nowMs: number;
  record: ErrorRecord;
  successorAt: number | null;
  attempts: number;
  /** Only if the lease expired before this time (lease recovery; with `deadWorker`, or its worker is dead). */
  expiredLeaseBefore?: number;
  deadWorker?: DeadWorkerGuard;
}

/**
 * How a dead worker's lease may be recovered before it runs out: `gone`, its registry heartbeat
 * is stale (and the caller knows its process is gone); `silent`, its liveness beat stopped too.
 */
export type DeadWorkerGuard = 'gone' | 'silent';

/** Rows per multi-row INSERT: under every database's bind-parameter limit. */
const INSERT_CHUNK = 400;

/**
 * Completes successes: deletes the pending rows (guarded by claim token), writes the completed
 * rows and the successors of recurring tasks, a bounded number of bytes per statement. Returns
 * those whose lease was lost (nothing written for them), those the database cannot store
 * (nothing written either: the caller records them failed), and, when a statement failed, its
 * error and the successes it and the statements after it would have written (those before it
 * are written: a failure part-way is not thrown, so that they are not written twice).
 */
export async function completeMany(store: SettleStore, items: readonly Completion[], nowMs: number): Promise<CompleteOutcome> {
  const out: CompleteOutcome = { done: [], lost: [], refused: [], unwritten: [], error: null };
  if (items.length === 0) return out;
  const plan = await planSuccessStatements(items, store.dialect, store.knex);
  for (const r of plan.refused) out.refused.push({ item: r.item, reason: r.reason });
  // Plain successes: one server-side copy per statement. Recurring ones also insert a successor.
  const statements = plan.statements.map((chunk) => ({ chunk, recurring: chunk[0]!.successorAt !== null }));
  for (let i = 0; i < statements.length; i++) {
    const { chunk, recurring } = statements[i]!;
    try {
      const r = recurring ? await completeWithSuccessors(store, chunk, nowMs) : await completePlain(store, chunk, nowMs);
      out.done.push(...r.done);
      out.lost.push(...r.lost);
    } catch (err) {
      out.error = err;
      out.unwritten = statements.slice(i).flatMap((s) => s.chunk);
      break;
    }
  }
  if (out.lost.length > 0) await findWrittenEarlier(store, out);
  return out;
}

/**
 * An ambiguous commit: a success was written, but the answer was lost with the connection, and
 * the write tried again finds the pending row gone. The completed row of this very attempt (this
 * worker, this claim's start, this finish time, not failed) says it was stored: done, not lost.
 * Anything else (another worker's run, a failure written by lease recovery) stays lost. When the
 * database does not answer the check, the items are left unwritten, to be tried again.
 */
async function findWrittenEarlier(store: SettleStore, out: CompleteOutcome): Promise<void> {
  let rows: Array<Record<string, unknown>>;
  try {
    rows = await store.retrying(() =>
      store
        .knex(store.tables.completed)
        .select('task_id', 'worker_id', 'started_at', 'finished_at')
        .whereIn('task_id', out.lost.map((c) => c.task.id))
        .whereNull('failed_at'),
    );
  } catch (err) {
    out.unwritten = [...out.lost, ...out.unwritten];
    out.error ??= err;
    out.lost = [];
    return;
  }
  const mine = (c: Completion) =>
    rows.some((r) => String(r.task_id) === c.task.id && r.worker_id === c.task.lockedBy && Number(r.started_at) === c.task.lockedAt && Number(r.finished_at) === c.finishedAt);
  out.done.push(...out.lost.filter(mine));
  out.lost = out.lost.filter((c) => !mine(c));
}

/** Successes without a successor: one server-side copy (the dialect's), else one by one. */
async function completePlain(store: SettleStore, chunk: readonly Completion[], nowMs: number): Promise<{ done: Completion[]; lost: Completion[] }> {
  const ids = await store.retrying(() =>
    store.dialect.completeMany(
      store.knex,
      store.tables,
      chunk.map((c) => ({ id: c.task.id, token: c.task.claimToken!, finishedAt: c.finishedAt, returnValue: c.returnValue, workerId: c.task.lockedBy })),
    ),
  );
  if (ids === null) return completeWithSuccessors(store, chunk, nowMs);
  const set = new Set(ids);
  const done: Completion[] = [];
  const lost: Completion[] = [];
  for (const c of chunk) (set.has(c.task.id) ? done : lost).push(c);
  return { done, lost };
}

/** Completes with the rows built here (and successors inserted), in one transaction. */
async function completeWithSuccessors(store: SettleStore, items: readonly Completion[], nowMs: number): Promise<{ done: Completion[]; lost: Completion[] }> {
  try {
    await store.tx(async (trx) => {
      const guarded = await guardSuccessors(store, trx, items, nowMs);
      const n = await trx(store.tables.tasks)
        .whereIn('id', items.map((c) => c.task.id))
        .whereIn('claim_token', items.map((c) => c.task.claimToken!))
        .del();
      if (n !== items.length) throw new LostLeases();
      await writeFinished(store, trx, guarded.map((c) => [c.task, finishOf(c)] as const), nowMs, guarded);
    });
    return { done: [...items], lost: [] };
  } catch (err) {
    if (!(err instanceof LostLeases)) throw err;
  }
  // Some lease was lost: settle one by one to learn which.
  const done: Completion[] = [];
  const lost: Completion[] = [];
  for (const c of items) {
    const ok = await store.tx(async (trx) => {
      const [g] = await guardSuccessors(store, trx, [c], nowMs);
      if (!(await deleteClaimed(store, trx, c.task))) return false;
      await writeFinished(store, trx, [[g!.task, finishOf(g!)]], nowMs, [g!]);
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
async function guardSuccessors<T extends { task: TaskRow; successorAt: number | null }>(store: SettleStore, trx: Knex.Transaction, items: readonly T[], nowMs: number): Promise<T[]> {
  const recurring = items.filter((i) => i.successorAt !== null);
  if (recurring.length === 0) return [...items];
  // Sorted: two transactions take the locks they share in one order, so never deadlock on them.
  for (const hash of [...new Set(recurring.map((i) => i.task.hash))].sort()) await store.lockKey(trx, `hash:${hash}`, nowMs);
  const rows = (await trx(store.tables.tasks)
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

function finishOf(c: Completion): Finish {
  return {
    finishedAt: c.finishedAt,
    failedAt: null,
    returnValue: c.returnValue,
    lastError: c.task.lastError,
    errors: c.task.errors,
    attempts: c.task.attempts,
  };
}

async function writeFinished(
  store: SettleStore,
  trx: Knex.Transaction,
  finished: ReadonlyArray<readonly [TaskRow, Finish]>,
  nowMs: number,
  successors: ReadonlyArray<{ task: TaskRow; successorAt: number | null }>,
): Promise<void> {
  const rows = finished.map(([t, f]) => completedRow(t, f));
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await trx(store.tables.completed).insert(rows.slice(i, i + INSERT_CHUNK));
  }
  const next = successors.filter((s) => s.successorAt !== null).map((s) => newTaskRow(successorOf(s.task, s.successorAt!, nowMs)));
  if (next.length > 0) await store.dialect.insertReturningIds(trx, store.tables.tasks, next);
}

async function deleteClaimed(store: SettleStore, trx: Db, task: TaskRow): Promise<boolean> {
  const n = await trx(store.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!).del();
  return n === 1;
}

/**
 * Puts a snoozed task back to READY at `runAt`: lease cleared, the attempt given back, one more
 * snooze counted, no error. `lost` if the lease is gone; `cancelled` if a cancellation was
 * requested meanwhile (the caller fails it instead: a snooze never swallows a cancel request).
 */
export async function snooze(store: SettleStore, task: TaskRow, runAt: number): Promise<'ok' | 'lost' | 'cancelled'> {
  const q = store.knex(store.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!);
  const n = await store.retrying(() =>
    q
      .clone()
      .where('cancel_requested', false)
      .update({
        run_at: runAt,
        locked_by: null,
        claim_token: null,
        locked_at: null,
        locked_until: null,
        attempts: store.knex.raw('CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END'),
        snoozes: store.knex.raw('snoozes + 1'),
      }),
  );
  if (n === 1) return 'ok';
  const still = (await store.retrying(() => q.clone().select('cancel_requested').first())) as { cancel_requested: unknown } | undefined;
  return still && (still.cancel_requested === true || Number(still.cancel_requested) === 1) ? 'cancelled' : 'lost';
}

/**
 * Puts a failed attempt back as ready at `runAt`, with its error. `lost` if the lease is gone;
 * `cancelled` if a cancellation was requested meanwhile (the caller then fails it instead, so a
 * retry never swallows a cancel request).
 */
export async function retry(store: SettleStore, task: TaskRow, runAt: number, record: ErrorRecord): Promise<'ok' | 'lost' | 'cancelled'> {
  const { errors, lastError } = store.withError(task, record);
  const q = store.knex(store.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!);
  return readyGuarded(store, q, {
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
export async function recoverLease(store: SettleStore, task: TaskRow, runAt: number, record: ErrorRecord, nowMs: number, o: { deadWorker?: DeadWorkerGuard } = {}): Promise<'ok' | 'lost' | 'cancelled'> {
  const { errors, lastError } = store.withError(task, record);
  const q = store.knex(store.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!).whereNotNull('locked_by');
  whereRecoverable(store, q, nowMs, o.deadWorker);
  return readyGuarded(store, q, {
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
 * heartbeat is stale at `nowMs` (`gone`), or it is silent (`silent`: see dead-workers.ts): a
 * worker that beat again meanwhile keeps its tasks.
 */
function whereRecoverable(store: SettleStore, q: Knex.QueryBuilder, nowMs: number, deadWorker: DeadWorkerGuard | undefined): void {
  if (!deadWorker) {
    q.where('locked_until', '<', nowMs);
    return;
  }
  const dead = deadWorker === 'silent' ? silentWorkerIds(store.knex, store.tables, nowMs) : staleWorkerIds(store.knex, store.tables, nowMs);
  q.where((w) => w.where('locked_until', '<', nowMs).orWhereIn('locked_by', dead));
}


/** Applies `set` to the row `q` guards unless a cancel was requested: ok, cancelled or lost. */
async function readyGuarded(store: SettleStore, q: Knex.QueryBuilder, set: Record<string, unknown>): Promise<'ok' | 'lost' | 'cancelled'> {
  const n = await store.retrying(() => q.clone().where('cancel_requested', false).update(set));
  if (n === 1) return 'ok';
  const still = (await store.retrying(() => q.clone().select('cancel_requested').first())) as { cancel_requested: unknown } | undefined;
  return still && (still.cancel_requested === true || Number(still.cancel_requested) === 1) ? 'cancelled' : 'lost';
}

/**
 * Asks the worker running this claim to abort it (seen at its next heartbeat). Not once lease
 * recovery has taken the lease away: nobody would hear the request, so the caller reads the
 * task again and finds it READY.
 */
export async function requestCancel(store: SettleStore, task: TaskRow): Promise<boolean> {
  const n = await store.retrying(() =>
    store.knex(store.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!).whereNotNull('locked_by').update({ cancel_requested: true }),
  );
  return n === 1;
}

/** Fails a READY (unclaimed) task for good, e.g. a cancelled one. False if it was claimed meanwhile. */
export async function failReady(store: SettleStore, task: TaskRow, nowMs: number, record: ErrorRecord): Promise<boolean> {
  const { errors, lastError } = store.withError(task, record);
  return store.tx(async (trx) => {
    if ((await trx(store.tables.tasks).where('id', task.id).whereNull('locked_by').del()) !== 1) return false;
    const finish: Finish = { finishedAt: nowMs, failedAt: nowMs, returnValue: null, lastError, errors, attempts: task.attempts };
    await writeFinished(store, trx, [[{ ...task, lockedBy: null, lockedAt: null }, finish]], nowMs, []);
    return true;
  });
}

/**
 * Fails a task for good: moves it to the completed table with its error (and schedules the
 * successor of a recurring task). False if the lease was lost.
 */
export async function fail(
  store: SettleStore,
  task: TaskRow,
  opts: FailOptions,
): Promise<boolean> {
  const { errors, lastError } = store.withError(task, opts.record);
  return store.tx(async (trx) => {
    const [g] = await guardSuccessors(store, trx, [{ task, successorAt: opts.successorAt }], opts.nowMs);
    const q = trx(store.tables.tasks).where('id', task.id).where('claim_token', task.claimToken!);
    if (opts.expiredLeaseBefore !== undefined) whereRecoverable(store, q, opts.expiredLeaseBefore, opts.deadWorker);
    if ((await q.del()) !== 1) return false;
    const finish: Finish = {
      finishedAt: opts.nowMs,
      failedAt: opts.nowMs,
      returnValue: null,
      lastError,
      errors,
      attempts: opts.attempts,
    };
    await writeFinished(store, trx, [[g!.task, finish]], opts.nowMs, [g!]);
    return true;
  });
}

/**
 * Gives claimed tasks back: lease cleared, attempt returned, ready at once (or, with `runAt`, not
 * due before then: claimed tasks were due, so it only moves their run time later). Returns how many.
 */
export async function release(store: SettleStore, tasks: readonly TaskRow[], opts: { runAt?: number } = {}): Promise<number> {
  if (tasks.length === 0) return 0;
  return store.retrying(() =>
    store.knex(store.tables.tasks)
      .whereIn('id', tasks.map((t) => t.id))
      .whereIn('claim_token', tasks.map((t) => t.claimToken!))
      .update({
        locked_by: null,
        claim_token: null,
        locked_at: null,
        locked_until: null,
        attempts: store.knex.raw('CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END'),
        ...(opts.runAt === undefined ? {} : { run_at: opts.runAt }),
      }),
  );
}

class LostLeases extends Error {}

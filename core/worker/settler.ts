/**
 * Settling: the write that ends an attempt. Successes are buffered and completed many per
 * transaction: a write starts as soon as the previous one ends (or after `flushMs`, default 0), so
 * batches grow with the load; retries, failures and releases are written at once.
 * Every write is guarded by the claim token; a write that finds the lease gone is a no-op that is
 * logged. When the database is unreachable (or busy), writes stay queued and are tried again with
 * capped backoff, so no result is lost while the worker lives. When the database answers but
 * refuses a write, the batch is written one write at a time, and a write it keeps refusing (a
 * result too large for it, a value it cannot hold) is recorded as the task's failure with the
 * reason: one bad result never holds up the others or makes its task run again.
 */
import { errorRecord, RecordRefusedError } from '../errors.js';
import type { Logger } from '../base/log.js';
import { attemptsRecorded, decideCancelWinsOverRetry, decideRecordRefused, type Decision, type FailDecision } from '../policy/transitions.js';
import type { Completion, Store } from '../store/store.js';
import { isStatementTimeout } from '../store/dialects/timeouts.js';
import { driverMessage } from '../store/storable.js';
import type { TaskRow } from '../types.js';
import { Fifo } from './fifo.js';
import type { Service } from './service.js';
import { taskRecurrence } from './maintenance.js';

export type SettledOutcome = 'succeeded' | 'rescheduled' | 'snoozed' | 'failed' | 'released' | 'lost';

export interface SettleReport {
  task: TaskRow;
  outcome: SettledOutcome;
  decision: Decision;
  returnValue: string | null;
  /** Wall-clock milliseconds the attempt ran. */
  durationMs: number | null;
}

interface PendingWrite {
  task: TaskRow;
  decision: Decision;
  returnValue: string | null;
  durationMs: number | null;
  finishedAt: number;
}

export interface SettlerOptions {
  store: Store;
  workerId: string;
  now: () => number;
  log: Logger;
  /** Called after each write commits (events and log lines). */
  onSettled: (report: SettleReport) => void;
  /** Reports that the database is unreachable (true) or reachable again (false). */
  onConnection: (ok: boolean, err: unknown, startedAt: number) => void;
  /** Called after each write, so a worker waiting for the backlog to shrink can go on. */
  onProgress?: () => void;
  flushMs?: number;
  maxBatch?: number;
  /** Told of each write that went through: its kind (`complete` for a batch of successes, else the decision) and seconds. */
  onWritten?: (kind: string, seconds: number) => void;
  /**
   * The worker's leases: when they may have expired (an outage, a stall), a beat comes before the
   * next write, so a lease that another worker recovered but nobody re-claimed is taken back and
   * the result recorded as the claim left the task.
   */
  leases?: { caughtUp(): Promise<boolean> };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Tries of one write that the server answers by dropping the connection, before it counts as refused. */
const DROPPED_TRIES = 3;

/**
 * Milliseconds before trying again a write whose connection was dropped, times the tries so far.
 * A server that kills every connection of the pool at once (KILL CONNECTION, a restart) leaves
 * the others dead in the pool until their close events are handled: tried at once, the write took
 * the next dead one, and two drops in a row recorded a 2-byte result as refused (seen once in
 * KILLCONN-01 on MariaDB). The pause lets the pool drop them first.
 */
const DROPPED_PAUSE_MS = 100;

/** Writes of a batch that were not made, and the error that stopped them. */
interface Unwritten {
  writes: PendingWrite[];
  error: unknown;
}

export class Settler implements Service {
  private readonly queue = new Fifo<PendingWrite>(64);
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private backoffMs = 0;
  private readonly flushMs: number;
  private readonly maxBatch: number;

  constructor(private readonly o: SettlerOptions) {
    this.flushMs = o.flushMs ?? 0;
    this.maxBatch = o.maxBatch ?? 1000;
  }

  /** Writes start when decisions arrive: nothing to begin. */
  start(): void {}

  /**
   * Writes what is queued, retrying through an outage for up to 30 s; what is still queued then
   * is left to lease recovery (the worker keeps heartbeating until this returns).
   */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const flushed = await this.flush(Date.now() + 30_000);
    if (!flushed) this.o.log.error('some results could not be recorded before exit; those tasks will be recovered when their leases expire');
  }

  /**
   * The writes under way, out of the queue until they are reported or put back. Their leases
   * must stay alive too: a heartbeat that left them out took back none of them after an outage,
   * and a claim then took such a task again (recovered meanwhile by another worker) and ran it a
   * second time here, its first result refused (HOSTS-01, 5 runs in 21 on PostgreSQL).
   */
  private readonly writing = new Set<PendingWrite>();

  /** Tasks whose results are waiting to be written, or being written; their leases must stay alive. */
  held(): TaskRow[] {
    return [...this.writing, ...this.queue.toArray()].map((w) => w.task);
  }

  get size(): number {
    return this.queue.length;
  }

  /**
   * Claim tokens, by task id, of the tasks whose results are queued or being written (an entry
   * goes when its write is reported, or given up on).
   */
  readonly ended = new Map<string, string>();

  /** Queues a decision for `task`; onSettled reports it once written (or found to be lost). */
  settle(task: TaskRow, decision: Decision, returnValue: string | null = null, durationMs: number | null = null): void {
    this.queue.push({ task, decision, returnValue, durationMs, finishedAt: this.o.now() });
    if (task.claimToken !== null) this.ended.set(task.id, task.claimToken);
    const batched = decision.type === 'complete';
    if (!batched || this.queue.length >= this.maxBatch) this.kick(0);
    else this.kick(this.flushMs);
  }

  /** Writes what is queued now, without waiting out the backoff (the database is back). */
  kickNow(): void {
    if (this.queue.length > 0) this.kick(0);
  }

  private kick(delayMs: number): void {
    if (this.flushing) return;
    if (delayMs === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.flushing = this.flushLoop().finally(() => {
        this.flushing = null;
        if (this.queue.length > 0) this.kick(this.backoffMs || this.flushMs);
      });
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.kick(0);
      }, delayMs);
    }
  }

  /**
   * Writes everything queued (waiting for a flush under way), retrying through an outage until
   * `deadlineMs` (epoch ms of the real clock). Returns false if writes were still queued then.
   */
  async flush(deadlineMs = Infinity): Promise<boolean> {
    while (this.queue.length > 0 || this.flushing) {
      if (this.flushing) {
        await this.flushing;
        continue;
      }
      if (this.backoffMs > 0) {
        if (Date.now() + this.backoffMs > deadlineMs) return false;
        await sleep(this.backoffMs);
      }
      this.kick(0);
    }
    return true;
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      // A result written before a beat took back its lease would be refused (see caughtUp).
      if (this.o.leases && !(await this.o.leases.caughtUp())) {
        this.backOff();
        return;
      }
      const batch = this.takeBatch();
      const startedAt = performance.now();
      const kept = await this.writeHeld(batch, startedAt);
      if (kept) return;
      if (this.backoffMs > 0) this.o.onConnection(true, null, startedAt);
      this.backoffMs = 0;
      this.o.onProgress?.();
    }
  }

  /** Writes `batch`, held meanwhile (see `writing`); true when the database was away and it was put back. */
  private async writeHeld(batch: PendingWrite[], startedAt: number): Promise<boolean> {
    for (const w of batch) this.writing.add(w);
    try {
      const failed = await this.write(batch);
      if (!failed) this.o.onWritten?.(batch[0]!.decision.type, (performance.now() - startedAt) / 1000);
      return !!failed && !(await this.writeOneByOne(failed, startedAt));
    } finally {
      for (const w of batch) this.writing.delete(w);
    }
  }

  /**
   * True when `err` means the database is away or busy rather than refusing this statement: a
   * deadlock or busy database (after the store's own retries), or a lost connection after which
   * the database does not answer either. MySQL/MariaDB drop the connection on a statement over
   * max_allowed_packet, so a lost connection alone proves nothing: a round trip tells. A write
   * cut off by statementTimeout waited on a lock or a busy server (the database answers a ping
   * meanwhile): it is kept and written later, never recorded as refused.
   */
  private async away(err: unknown): Promise<boolean> {
    const kind = this.o.store.dialect.classifyError(err);
    if (kind === 'retry' || isStatementTimeout(err)) return true;
    if (kind !== 'connection') return false;
    try {
      await this.o.store.ping();
      return false;
    } catch {
      return true;
    }
  }

  /** Puts writes back at the front, in order, and backs off (the database is away). */
  private keep(writes: PendingWrite[], err: unknown, startedAt: number): false {
    this.queue.unshiftAll(writes);
    this.o.onConnection(false, err, startedAt);
    this.backOff();
    return false;
  }

  /** The next try waits twice as long as the last, from 250 ms to 30 s. */
  private backOff(): void {
    this.backoffMs = Math.min(30_000, Math.max(250, this.backoffMs * 2));
  }

  /**
   * A write failed while the database may still answer. Each write is tried alone: one that the
   * database refuses (an error that is not about the connection, or a connection it drops again
   * while answering every other statement) is recorded as its task's failure; the others are
   * written. False when the database turns out to be away: what is left is kept for later.
   */
  private async writeOneByOne(failed: Unwritten, startedAt: number): Promise<boolean> {
    const { writes } = failed;
    if (await this.away(failed.error)) return this.keep(writes, failed.error, startedAt);
    if (this.o.store.dialect.classifyError(failed.error) === 'missing-table') {
      // Not this write's fault: the tables are gone. The leases expire and the tasks are recovered.
      this.o.log.error('could not record task results; their leases will expire and the tasks will be recovered', {
        error: driverMessage(failed.error),
        ids: writes.map((w) => w.task.id).join(','),
      });
      for (const w of writes) this.ended.delete(w.task.id);
      return true;
    }
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!;
      let error = writes.length === 1 ? failed.error : null;
      let tries = writes.length === 1 ? 1 : 0;
      for (;;) {
        const dropped = error !== null && this.o.store.dialect.classifyError(error) === 'connection';
        if (error !== null && (!dropped || tries >= DROPPED_TRIES)) {
          const away = await this.refuse(w, error, null);
          if (away) return this.keep(writes.slice(i), away.error, startedAt);
          break;
        }
        if (dropped) await sleep(DROPPED_PAUSE_MS * tries);
        const again = await this.write([w]);
        if (!again) break;
        tries++;
        error = again.error;
        if (await this.away(error)) return this.keep(writes.slice(i), error, startedAt);
      }
    }
    return true;
  }

  /**
   * Records `w`'s task FAILED with a RecordRefusedError that says what the database refused and
   * why. Returns the error when the database turned out to be away (the write is to be kept); a
   * failure to record even that is logged, and the task's lease expires and it is recovered.
   */
  private async refuse(w: PendingWrite, err: unknown, reason: string | null): Promise<{ error: unknown } | null> {
    const now = this.o.now();
    const t = w.task;
    const d = w.decision;
    if (d.type === 'release' || d.type === 'none') {
      // Giving a task back stores nothing of the attempt: no reason to fail the task for it.
      this.o.log.error('could not give a task back; its lease will expire and the task will be recovered', { id: t.id, error: driverMessage(err) });
      this.ended.delete(t.id);
      return null;
    }
    const why = reason ?? `the database refused it: ${driverMessage(err)}`;
    let what: string;
    if (d.type === 'complete') {
      what = `the result of attempt ${t.attempts} (${w.returnValue === null ? 0 : Buffer.byteLength(w.returnValue)} bytes of JSON)`;
    } else if (d.type === 'snooze') {
      what = `the snooze of attempt ${t.attempts}`;
    } else {
      what = `the error record of attempt ${t.attempts} (${preview(d.error)})`;
    }
    const error = new RecordRefusedError(`Task ${t.name} #${t.id}: ${what} could not be stored; ${why}`);
    const failure = decideRecordRefused(
      { attempts: t.attempts, scheduledAt: t.scheduledAt, recurrence: taskRecurrence(t), repeatOnFailure: t.repeatOnFailure },
      d,
      error,
      { nowMs: now },
    );
    try {
      const ok = await this.fail(t, failure, now);
      this.o.log.error('the database refused to store an attempt\'s end; the task is recorded failed with the reason', { id: t.id, name: t.name, error: error.message });
      this.report({ ...w, decision: failure, returnValue: null }, ok ? 'failed' : 'lost');
      return null;
    } catch (e) {
      if (await this.away(e)) return { error: e };
      this.o.log.error('could not record a task\'s end, nor its failure; its lease will expire and the task will be recovered', {
        id: t.id,
        error: driverMessage(e),
      });
      this.ended.delete(t.id);
      return null;
    }
  }

  /** Successes in a row from the front of the queue, or a single other write. */
  private takeBatch(): PendingWrite[] {
    const first = this.queue.at(0)!;
    if (first.decision.type !== 'complete') return [this.queue.shift()!];
    let n = 0;
    while (n < this.queue.length && n < this.maxBatch && this.queue.at(n)!.decision.type === 'complete') n++;
    return this.queue.take(n);
  }

  /** Writes `batch` (several successes, or one other write); returns what it could not write. */
  private async write(batch: PendingWrite[]): Promise<Unwritten | null> {
    const { store } = this.o;
    const now = this.o.now();
    const d = batch[0]!.decision;
    try {
      if (d.type === 'complete') return await this.complete(batch, now);
      const w = batch[0]!;
      let ok: boolean;
      let outcome: SettledOutcome = 'released';
      if (d.type === 'retry') {
        const r = await store.retry(w.task, d.runAt, errorRecord(d.error, w.task.attempts, now, this.o.workerId));
        ok = r !== 'lost';
        outcome = 'rescheduled';
        if (r === 'cancelled') {
          // Cancelled while it ran: the cancellation wins over the retry.
          w.decision = decideCancelWinsOverRetry(w.task.attempts, d.error);
          ok = await this.fail(w.task, w.decision, now);
          outcome = 'failed';
        }
      } else if (d.type === 'fail') {
        ok = await this.fail(w.task, d, now);
        outcome = 'failed';
      } else if (d.type === 'release') {
        ok = (await store.release([w.task])) === 1;
      } else if (d.type === 'snooze') {
        const r = await store.snooze(w.task, d.runAt);
        ok = r !== 'lost';
        outcome = 'snoozed';
        if (r === 'cancelled') {
          // Cancelled while it ran: the cancellation wins over the snooze.
          w.decision = decideCancelWinsOverRetry(w.task.attempts, new Error('it had snoozed'));
          ok = await this.fail(w.task, w.decision, now);
          outcome = 'failed';
        }
      } else {
        ok = false;
      }
      this.report(w, ok ? outcome : 'lost');
      return null;
    } catch (error) {
      return { writes: batch, error };
    }
  }

  /**
   * Successes: the store writes them a bounded number of bytes per statement and says which it
   * cannot store at all (recorded failed here). A statement that fails leaves its writes and the
   * ones after it unwritten; those before it are reported.
   */
  private async complete(batch: PendingWrite[], now: number): Promise<Unwritten | null> {
    const items: Completion[] = batch.map((w) => ({
      task: w.task,
      finishedAt: w.finishedAt,
      returnValue: w.returnValue,
      successorAt: (w.decision as { successorAt: number | null }).successorAt,
    }));
    const r = await this.o.store.completeMany(items, now);
    const lostIds = new Set(r.lost.map((c) => c.task.id));
    const doneIds = new Set(r.done.map((c) => c.task.id));
    for (const w of batch) {
      if (lostIds.has(w.task.id) || doneIds.has(w.task.id)) this.report(w, lostIds.has(w.task.id) ? 'lost' : 'succeeded');
    }
    const byId = new Map(batch.map((w) => [w.task.id, w]));
    for (let i = 0; i < r.refused.length; i++) {
      const away = await this.refuse(byId.get(r.refused[i]!.item.task.id)!, null, r.refused[i]!.reason);
      // The database went away: what is left is written (or refused again) later.
      const left = [...r.refused.slice(i).map((x) => x.item), ...r.unwritten];
      if (away) return { writes: left.map((c) => byId.get(c.task.id)!), error: away.error };
    }
    if (r.unwritten.length === 0) return null;
    return { writes: r.unwritten.map((c) => byId.get(c.task.id)!), error: r.error };
  }

  private fail(task: TaskRow, d: FailDecision, now: number): Promise<boolean> {
    const attempts = attemptsRecorded(d, task.attempts);
    return this.o.store.fail(task, { nowMs: now, record: errorRecord(d.error, attempts, now, this.o.workerId), successorAt: d.successorAt, attempts });
  }

  private report(w: PendingWrite, outcome: SettledOutcome): void {
    this.ended.delete(w.task.id);
    if (outcome === 'lost' && w.decision.type !== 'none') {
      this.o.log.warn('lease lost before the result was recorded; another worker owns the task now, so this result is discarded', {
        id: w.task.id,
        name: w.task.name,
      });
    }
    this.o.onSettled({ task: w.task, outcome, decision: w.decision, returnValue: w.returnValue, durationMs: w.durationMs });
  }
}

/** An error's class and the start of its message, in printable ASCII: what any database stores. */
function preview(err: unknown): string {
  const cls = err instanceof Error ? err.name : typeof err;
  const msg = err instanceof Error ? err.message : String(err);
  const clean = `${cls}: ${msg}`.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

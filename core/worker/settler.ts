/**
 * Settling: the write that ends an attempt. Successes are buffered and completed many per
 * transaction: a write starts as soon as the previous one ends (or after `flushMs`, default 0), so
 * batches grow with the load; retries, failures and releases are written at once.
 * Every write is guarded by the claim token; a write that finds the lease gone is a no-op that is
 * logged. When the database is unreachable, writes stay queued and are tried again with capped
 * backoff, so no result is lost while the worker lives.
 */
import { errorRecord } from '../errors.js';
import type { Logger } from '../base/log.js';
import { attemptsRecorded, decideCancelWinsOverRetry, type Decision, type FailDecision } from '../policy/transitions.js';
import type { Completion, Store } from '../store/store.js';
import type { TaskRow } from '../types.js';
import { Fifo } from './fifo.js';
import type { Service } from './service.js';

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
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

  /** Tasks whose results are waiting to be written; their leases must stay alive. */
  held(): TaskRow[] {
    return this.queue.toArray().map((w) => w.task);
  }

  get size(): number {
    return this.queue.length;
  }

  /** Queues a decision for `task`; onSettled reports it once written (or found to be lost). */
  settle(task: TaskRow, decision: Decision, returnValue: string | null = null, durationMs: number | null = null): void {
    this.queue.push({ task, decision, returnValue, durationMs, finishedAt: this.o.now() });
    const batched = decision.type === 'complete';
    if (!batched || this.queue.length >= this.maxBatch) this.kick(0);
    else this.kick(this.flushMs);
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
      const batch = this.takeBatch();
      const startedAt = performance.now();
      try {
        await this.write(batch);
        if (this.backoffMs > 0) this.o.onConnection(true, null, startedAt);
        this.backoffMs = 0;
        this.o.onProgress?.();
      } catch (err) {
        if (this.o.store.dialect.classifyError(err) === 'connection') {
          // Keep the writes (in order) and try again later.
          this.queue.unshiftAll(batch);
          this.o.onConnection(false, err, startedAt);
          this.backoffMs = Math.min(30_000, Math.max(250, this.backoffMs * 2));
          return;
        }
        // Not transient: the task keeps its lease until it expires and another worker recovers it.
        this.o.log.error('could not record a task result; its lease will expire and the task will be recovered', {
          error: err instanceof Error ? err.message : String(err),
          ids: batch.map((w) => w.task.id).join(','),
        });
      }
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

  private async write(batch: PendingWrite[]): Promise<void> {
    const { store } = this.o;
    const now = this.o.now();
    const d = batch[0]!.decision;
    if (d.type === 'complete') {
      const items: Completion[] = batch.map((w) => ({
        task: w.task,
        finishedAt: w.finishedAt,
        returnValue: w.returnValue,
        successorAt: (w.decision as { successorAt: number | null }).successorAt,
      }));
      const { lost } = await store.completeMany(items, now);
      const lostIds = new Set(lost.map((c) => c.task.id));
      for (const w of batch) {
        this.report(w, lostIds.has(w.task.id) ? 'lost' : 'succeeded');
      }
      return;
    }
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
        w.decision = decideCancelWinsOverRetry(w.task.attempts, new Error('it had snoozed'));
        ok = await this.fail(w.task, w.decision, now);
        outcome = 'failed';
      }
    } else {
      ok = false;
    }
    this.report(w, ok ? outcome : 'lost');
  }

  private fail(task: TaskRow, d: FailDecision, now: number): Promise<boolean> {
    const attempts = attemptsRecorded(d, task.attempts);
    return this.o.store.fail(task, { nowMs: now, record: errorRecord(d.error, attempts, now, this.o.workerId), successorAt: d.successorAt, attempts });
  }

  private report(w: PendingWrite, outcome: SettledOutcome): void {
    if (outcome === 'lost' && w.decision.type !== 'none') {
      this.o.log.warn('lease lost before the result was recorded; another worker owns the task now, so this result is discarded', {
        id: w.task.id,
        name: w.task.name,
      });
    }
    this.o.onSettled({ task: w.task, outcome, decision: w.decision, returnValue: w.returnValue, durationMs: w.durationMs });
  }
}

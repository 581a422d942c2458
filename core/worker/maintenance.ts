/**
 * What every worker does now and then besides running tasks: recover tasks whose lease expired
 * (their worker died or stalled), and warn about due tasks no loaded task file can run.
 */
import type { Clock } from '../base/clock.js';
import { errorRecord, WorkerLostError } from '../errors.js';
import { events } from '../base/events.js';
import type { Logger } from '../base/log.js';
import type { Recurrence } from '../policy/recurrence.js';
import { attemptsRecorded, decideExpiredLease, type Decision } from '../policy/transitions.js';
import type { DeadWorkerGuard, Store } from '../store/store.js';
import { isSilent, mayJudgeSilence } from '../policy/liveness.js';
import type { TaskRow } from '../types.js';
import type { RecurringScheduler } from './cron-scheduler.js';
import { processGoneHere, type ProcessPlace } from './process-identity.js';
import type { Service } from './service.js';

/** The recurrence stored on a task. */
export function taskRecurrence(t: TaskRow): Recurrence {
  return { everyMs: Math.round(t.repeatEvery * 1000), cron: t.repeatCron, timezone: t.timezone, untilMs: t.repeatUntil };
}

export interface MaintenanceOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  workerId: string;
  names: readonly string[];
  maxAttemptsFor: (t: TaskRow) => number;
  /** How often expired leases are looked for (and cron slots enqueued). */
  everyMs: number;
  /** Enqueues due cron slots of the schedules this worker's task files declare. */
  scheduler?: RecurringScheduler | null;
  /** While the database is down, the timer's passes are skipped (the worker backs off). */
  isDbDown?: () => boolean;
  /**
   * The claim tokens of every task this worker holds (running, prefetched, or waiting for its
   * result to be written): their leases are never "recovered" by this worker, whatever the clock
   * says. They are renewed (or taken back) by its own heartbeats.
   */
  heldTokens?: () => Iterable<string>;
  /**
   * Real-time milliseconds (performance.now()) before which recovery waits: after an outage, the
   * other workers cut by it get time to renew their leases first (see DatabaseHealth.backAt).
   */
  recoverAfter?: () => number;
  /** Told of each recovered lease (the metrics count them). */
  onRecovered?: (outcome: 'retried' | 'failed') => void;
  /** Called after a pass recovered tasks, so that this worker claims them without waiting for its next poll. */
  onAnyRecovered?: () => void;
  /** The priorities the claim's last walk named (those holding tasks not yet due; store/claim-priorities.ts): the unknown-name look reads by them. */
  priorities?: () => readonly number[];
  /** Whether a worker process is known to be gone (tests inject one; the default asks this machine's kernel). */
  processGone?: (p: ProcessPlace) => boolean;
  /**
   * How long (ms) this worker's own liveness beats have landed with no long gap (Liveness
   * .continuousMs); absent or 0: it has no beat, and judges no other worker silent.
   */
  livenessContinuousMs?: () => number;
  /** Real time (epoch ms) for the lease reads' schedule; tests inject one. Default Date.now. */
  realTime?: () => number;
}

const UNKNOWN_NAMES_EVERY_MS = 60_000;

/**
 * Lease recovery reads only the leases that expired since its last complete read (less this
 * margin, for a lease written just before that read and committed after it), and all of them
 * at least this often (real time): see recoverExpiredLeases.
 */
export const LEASE_READ_MARGIN_MS = 10_000;
export const ALL_LEASES_EVERY_MS = 60_000;

export class Maintenance implements Service {
  private lastRecovery = 0;
  /** The clock's time of the last complete read of expired leases (null: none yet), and when the last one of all of them was (real time). */
  private leasesReadTo: number | null = null;
  private allLeasesAt = -Infinity;
  private lastUnknownCheck = 0;
  private inFlight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: MaintenanceOptions) {}

  /**
   * Also ticks on a timer: the worker loop ticks at every poll, but a worker whose slots are all
   * busy does not poll, and recovery and cron slots must not wait for a free slot.
   */
  start(): void {
    this.timer = setInterval(() => void this.tick(this.o.isDbDown?.() ?? false), this.o.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  /** Runs what is due; never throws (a failure is logged and tried again next time). */
  tick(dbDown: boolean): Promise<void> {
    if (dbDown) return Promise.resolve();
    if (!this.inFlight) this.inFlight = this.run().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async run(): Promise<void> {
    const real = Date.now();
    try {
      if (real - this.lastRecovery >= this.o.everyMs) {
        this.lastRecovery = real;
        if (performance.now() >= (this.o.recoverAfter?.() ?? 0)) {
          const n = (await this.recoverExpiredLeases()) + (await this.recoverDeadWorkers());
          if (n > 0) this.o.onAnyRecovered?.();
        }
        if (this.o.scheduler) await this.o.scheduler.tick();
      }
      if (real - this.lastUnknownCheck >= UNKNOWN_NAMES_EVERY_MS) {
        this.lastUnknownCheck = real;
        await this.warnUnknownNames();
      }
    } catch (err) {
      this.o.log.warn('maintenance query failed; will try again', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * Makes tasks of dead workers claimable again (or fails them when their attempts are used up).
   * Never the leases this worker still holds: a worker that was cut off or stalled past its
   * leases renews them, or takes them back, with its next heartbeat. Its own expired leases that
   * it no longer holds (a result it gave up writing; a previous process with the same worker id)
   * are recovered like anyone's.
   *
   * The read goes through the lease index from its oldest entry, and that index also holds the
   * entries of finished tasks until vacuum or purge removes them, which a long transaction holds
   * off: beside one (LONGTX-01), every pass read every task run since it began. So a pass reads
   * only the leases that expired since the last complete pass (less LEASE_READ_MARGIN_MS), and
   * all of them every ALL_LEASES_EVERY_MS: a lease that expired earlier and was left alone (its
   * worker held it then, or another worker's write won) waits for that.
   */
  async recoverExpiredLeases(): Promise<number> {
    const now = this.o.clock.now();
    const held = new Set(this.o.heldTokens?.() ?? []);
    const real = (this.o.realTime ?? Date.now)();
    const all = this.leasesReadTo === null || now < this.leasesReadTo || real - this.allLeasesAt >= ALL_LEASES_EVERY_MS;
    const since = all ? undefined : this.leasesReadTo! - LEASE_READ_MARGIN_MS;
    const limit = 100;
    let expired: TaskRow[];
    let complete: boolean;
    if (held.size === 0) {
      expired = await this.o.store.expiredLeases(now, { limit, since });
      complete = expired.length < limit;
    } else {
      // Two reads, so that leases this worker holds (after an outage, many may have expired) never
      // crowd the other workers' out of a pass.
      const others = await this.o.store.expiredLeases(now, { limit, since, notLockedBy: this.o.workerId });
      const own = await this.o.store.expiredLeases(now, { limit, since, lockedBy: this.o.workerId });
      complete = others.length < limit && own.length < limit;
      expired = [...others, ...own.filter((t) => !held.has(t.claimToken!))];
    }
    // A read cut by its limit goes on from the same place next time.
    if (complete) {
      this.leasesReadTo = now;
      if (all) this.allLeasesAt = real;
    }
    let n = 0;
    for (const t of expired) {
      const error = new WorkerLostError(
        `worker ${t.lockedBy} stopped renewing its lease (it expired at ${new Date(t.lockedUntil ?? now).toISOString()}); the lost run counts as attempt ${t.attempts}`,
      );
      if (await this.recoverOne(t, error, now)) n++;
    }
    return n;
  }

  /**
   * Recovers, before their lease runs out, the tasks of workers that are dead for sure. Their
   * registry heartbeat is stale (policy/status.ts deadWorkerAfterMs: 9 s with the defaults), and
   * either:
   *  - their process is known to be gone (processGone: on this machine, the kernel has no such
   *    pid; DEADWORKER-01), or
   *  - they are silent (policy/liveness.ts isSilent: their liveness beat, which a thread sends
   *    whatever their event loop does, stopped for longer than their livenessTimeout: 12 s with
   *    the defaults), on any host (DEADWORKER-02). Judged only by a worker whose own beats have
   *    landed for that long without a long gap: a database that stalled for everyone stops every
   *    beat, and must not make live workers look dead when it answers again.
   * A stale registry heartbeat alone is not enough: a task that blocks its worker's event loop
   * stops it too, and that worker is alive; so is one whose liveness beat still lands. Workers
   * with neither (no beat: turned off, SQLite, an older version) elsewhere keep their tasks until
   * the lease runs out. The write is guarded by the same rule in SQL (a worker that beat meanwhile
   * keeps its tasks) and keeps the claim token, as for an expired lease.
   */
  async recoverDeadWorkers(): Promise<number> {
    const now = this.o.clock.now();
    const held = new Set(this.o.heldTokens?.() ?? []);
    const gone = this.o.processGone ?? processGoneHere;
    const judging = this.o.livenessContinuousMs?.() ?? 0;
    let n = 0;
    for (const c of await this.o.store.deadWorkerLeases(now)) {
      const t = c.task;
      if (held.has(t.claimToken!)) continue;
      const lastBeat = new Date(c.heartbeatAt).toISOString();
      if (gone(c)) {
        const error = new WorkerLostError(
          `worker ${t.lockedBy} is gone (process ${c.pid} on ${c.host} no longer exists; its last heartbeat was at ${lastBeat}); the lost run counts as attempt ${t.attempts}`,
        );
        if (await this.recoverOne(t, error, now, 'gone')) n++;
      } else if (isSilent(c, now) && mayJudgeSilence(judging, c.livenessMs!)) {
        const error = new WorkerLostError(
          `worker ${t.lockedBy} on ${c.host} is silent: no liveness beat for ${((now - c.aliveAt!) / 1000).toFixed(1)} s, over its livenessTimeout of ${c.livenessMs! / 1000} s (last at ${new Date(c.aliveAt!).toISOString()}): it is dead, stopped or cut off from the database; the lost run counts as attempt ${t.attempts}`,
        );
        if (await this.recoverOne(t, error, now, 'silent')) n++;
      }
    }
    return n;
  }

  /** One recovery write (retry or fail) with its log line and events; false when the guard refused. */
  private async recoverOne(t: TaskRow, error: WorkerLostError, now: number, deadWorker?: DeadWorkerGuard): Promise<boolean> {
    const d: Decision = decideExpiredLease(
      { attempts: t.attempts, scheduledAt: t.scheduledAt, recurrence: taskRecurrence(t), repeatOnFailure: t.repeatOnFailure, cancelRequested: t.cancelRequested },
      { nowMs: now, maxAttempts: this.o.maxAttemptsFor(t) },
      error,
    );
    const attempts = d.type === 'fail' ? attemptsRecorded(d, t.attempts) : t.attempts;
    const record = errorRecord(d.type === 'fail' ? d.error : error, attempts, now, t.lockedBy);
    let ok = false;
    if (d.type === 'retry') {
      const r = await this.o.store.recoverLease(t, d.runAt, record, now, { deadWorker });
      // A cancel request that arrived meanwhile is handled on the next pass.
      ok = r === 'ok';
    } else if (d.type === 'fail') {
      ok = await this.o.store.fail(t, { nowMs: now, record, successorAt: d.successorAt, attempts, expiredLeaseBefore: now, deadWorker });
    }
    if (!ok) return false;
    this.o.onRecovered?.(d.type === 'retry' ? 'retried' : 'failed');
    const info = { id: t.id, name: t.name, queue: t.queue, priority: t.priority, attempt: t.attempts, runAt: now, workerId: null };
    this.o.log.warn(d.type === 'retry' ? 'recovered a task whose worker stopped renewing its lease' : 'failed a task whose worker stopped renewing its lease; its attempts are used up', {
      id: t.id,
      name: t.name,
      lost_worker: t.lockedBy,
      attempt: t.attempts,
    });
    const err = d.type === 'fail' ? d.error : error;
    events.emit('task:error', { ...info, error: err });
    events.emit(d.type === 'retry' ? 'task:rescheduled' : 'task:failed', { ...info, error: err });
    return true;
  }

  async warnUnknownNames(): Promise<void> {
    const unknown = await this.o.store.unknownReady(this.o.names, this.o.clock.now(), this.o.priorities?.() ?? []);
    for (const [name, count] of unknown) {
      this.o.log.warn('due tasks have a name no loaded task file registers; this worker leaves them for one that does', { name, count });
    }
  }
}

/**
 * The worker: claim → execute → settle, with leases kept alive by heartbeats. It owns the loop,
 * the slots and shutdown; `executor.ts` runs one attempt, `settler.ts` writes its end, and
 * `policy/transitions.ts` decides what that end is. The CLI's process-tasks is a thin shell over it.
 */
import { currentClock, OffsetClock } from '../base/clock.js';
import { getSettings, type Settings } from '../config/settings.js';
import { CancelledError, LeaseLostError, WorkerStoppedError } from '../errors.js';
import { reportSettled, type StopReason, type WorkerSummary } from './report.js';
import { getLogger, type Logger } from '../base/log.js';
import { setLongTimeout, type LongTimer } from '../base/long-timer.js';
import { ensureMigrated } from '../store/migrate.js';
import { decideCancelledBeforeStart } from '../policy/transitions.js';
import { registeredNames } from '../definition/registry.js';
import type { Settler, SettleReport } from './settler.js';
import { claimOrder, type ClaimFilter, type Store } from '../store/store.js';
import { reachableStore } from '../store/open.js';
import type { TaskRow } from '../types.js';
import type { Services } from './service.js';
import type { FlowState } from './flow-state.js';
import { workerHelpers } from './helpers.js';
import { PrefetchBuffer, PRIORITY_RECHECK_MS } from './prefetch.js';
import { KeyGate } from './key-gate.js';
import { Slots } from './slots.js';
import { AttemptControl } from '../definition/attempt-control.js';
import { DatabaseHealth } from './db-health.js';
import { autoPrefetch, checkNamesRegistered, checkWorkerOptions, defaultWorkerId, heartbeatIntervalMs, type WorkerOptions } from './options.js';
import type { Maintenance } from './maintenance.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { Liveness } from './liveness.js';
import { WorkerMetrics } from './metrics.js';
import { bgtasksVersion } from '../base/version.js';
import type { Registry } from 'prom-client';
import { loadTracing, tracingSetUp } from '../base/tracing.js';
import { ClockSync } from './clock-sync.js';
import { UnansweredClaims } from './unanswered-claims.js';
import { AttemptRunner, maxAttemptsFor } from './attempt-runner.js';
import { Claimer } from './claimer.js';
import { IdleWait } from './idle-wait.js';

export type { WorkerOptions };

export type { StopReason, WorkerSummary };

export class Worker {
  readonly id: string;
  private settings!: Settings;
  private store!: Store;
  private settler!: Settler;
  private maintenance!: Maintenance;
  private leases!: LeaseKeeper;
  private liveness!: Liveness;
  /** A beat is under way before buffered tasks may start (see dispatch()). */
  private confirmingLeases = false;
  private services!: Services;
  private flow!: FlowState;
  /** Epoch ms (worker clock) when a duration run's time, grace included, is up; null otherwise. */
  private runUntil: number | null = null;
  /** The injected (or process-wide) clock, kept on the database's time by ClockSync. */
  private readonly clock: OffsetClock;
  readonly log: Logger;
  private filter!: ClaimFilter;
  private concurrency = 1;
  /** A fixed prefetch, or null for auto (see autoPrefetch). */
  private fixedPrefetch: number | null = null;
  private sleepMs = 5000;
  private lockTimeoutMs = 60_000;
  private slots = new Slots(1);
  private buffer!: PrefetchBuffer;
  /** A look for due tasks of higher priority is under way before buffered tasks may start. */
  private recheckingPriorities = false;
  private stopping: StopReason | null = null;
  private started = false;
  private started_at = 0;
  private deadlineTimer: LongTimer | null = null;
  private resolveDone!: (s: WorkerSummary) => void;
  readonly done: Promise<WorkerSummary>;
  private readonly summary: WorkerSummary;
  private health!: DatabaseHealth;
  /** Claims the database did not answer: what they took is given back before the next claim. */
  private unanswered!: UnansweredClaims;
  /** Whether info lines are written at all (building their fields costs on the hot path). */
  private logInfo = true;
  private attempts!: AttemptRunner;
  private claimer!: Claimer;
  private readonly idler = new IdleWait();
  private graceTimer: LongTimer | null = null;
  /** Null unless the `metrics` option asked for them. */
  private metrics: WorkerMetrics | null = null;

  constructor(private readonly options: WorkerOptions = {}) {
    checkWorkerOptions(options);
    this.id = options.workerId ?? defaultWorkerId();
    this.clock = new OffsetClock(options.clock ?? currentClock());
    this.log = options.logger ?? getLogger();
    this.logInfo = this.log.enabled?.('info') ?? true;
    this.summary = { workerId: this.id, ran: 0, succeeded: 0, rescheduled: 0, snoozed: 0, failed: 0, released: 0, lost: 0, reason: 'stopped' };
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Resolves settings, opens the database, checks the schema, and starts the loop. */
  async start(settings?: Settings): Promise<this> {
    if (this.started) throw new Error('worker already started');
    this.started = true;
    const o = this.options;
    this.settings = settings ?? (await getSettings());
    const s = this.settings;
    this.lockTimeoutMs = Math.round((o.lockTimeout ?? s.lockTimeout) * 1000);
    checkNamesRegistered(o.names, registeredNames());
    const heartbeatMs = heartbeatIntervalMs(o.heartbeatInterval, s.heartbeatInterval, this.lockTimeoutMs);
    this.concurrency = o.concurrency ?? s.concurrency;
    // The OpenTelemetry API only once the application has set OpenTelemetry up (a cache hit then):
    // before that, every span would be a no-op and the context a pass-through, and importing the
    // API (installed, but unused) took 40-120 ms on the bench machine. See AttemptRunner.tracedAttempts().
    const tracing = tracingSetUp() ? loadTracing() : null;
    // prom-client (when metrics are asked for) loads while the database answers.
    const metrics = o.metrics
      ? WorkerMetrics.create({ registry: o.metrics === true ? undefined : o.metrics, workerId: this.id, version: bgtasksVersion(), concurrency: this.concurrency })
      : null;
    // Awaited below; a start that fails first must not leave it unhandled.
    metrics?.catch(() => {});
    this.store = await reachableStore(s, o.connection);
    this.health = new DatabaseHealth(this.store, this.log);
    this.unanswered = new UnansweredClaims(this.store, this.id, this.log);
    const clockSync = new ClockSync({ store: this.store, clock: this.clock, log: this.log, isDbDown: () => this.health.down });
    // Before anything reads the clock for the database: the first lease, the first recovery pass,
    // the registry row and a duration run's end are all on the database's time. It only reads
    // (and never rejects), so it runs beside the schema check, which still ends before anything
    // is written or claimed: a schema of another version is never touched.
    const measured = clockSync.measure();
    try {
      await ensureMigrated(this.store.conn, s.tablePrefix);
    } finally {
      await measured;
    }
    this.slots = new Slots(this.concurrency);
    const prefetch = o.prefetch ?? s.prefetch;
    this.fixedPrefetch = prefetch === 'auto' ? null : prefetch;
    this.sleepMs = Math.round((o.sleep ?? s.sleep) * 1000);
    this.filter = {
      names: o.names ?? registeredNames(),
      queues: o.queues ?? null,
      excludeQueues: o.excludeQueues ?? null,
      ordering: s.priorityOrdering,
    };
    const otel = tracing ? await tracing : null;
    if (metrics) this.metrics = await metrics;
    this.buffer = new PrefetchBuffer(claimOrder(s.priorityOrdering), Math.min(this.sleepMs, PRIORITY_RECHECK_MS));
    // A duration run ends its last attempts by duration + grace: the run budget and the registry know when.
    this.runUntil = o.duration && o.duration > 0 ? this.clock.now() + Math.round((o.duration + (o.grace ?? 30)) * 1000) : null;
    const helpers = workerHelpers(
      {
        workerId: this.id,
        store: this.store,
        clock: this.clock,
        log: this.log,
        health: this.health,
        settings: s,
        options: o,
        names: this.filter.names,
        lockTimeoutMs: this.lockTimeoutMs,
        heartbeatMs,
        sleepMs: this.sleepMs,
        queues: this.filter.queues,
        excludeQueues: this.filter.excludeQueues,
        concurrency: this.concurrency,
        runUntil: this.runUntil,
        metrics: this.metrics,
        clockSync,
      },
      {
        held: () => [...this.slots.values().map((sl) => sl.task), ...this.buffer.toArray(), ...this.settler.held()],
        askRunningToStop: (reason) => this.askRunningToStop(reason),
        onLost: (token) => this.leaseLost(token),
        onCancelled: (token) => this.cancelHeld(token),
        onSettled: (r) => this.onSettled(r),
        wake: () => this.idler.poke(),
        maxAttemptsFor: (t) => maxAttemptsFor(t, o, s),
      },
    );
    this.settler = helpers.settler;
    this.maintenance = helpers.maintenance;
    this.flow = helpers.flow;
    this.leases = helpers.leases;
    this.liveness = helpers.liveness;
    const parts = { workerId: this.id, store: this.store, clock: this.clock, health: this.health, settler: this.settler, summary: this.summary, metrics: this.metrics };
    this.attempts = new AttemptRunner({ ...parts, log: this.log, settings: s, options: o, otel });
    this.claimer = new Claimer({
      ...parts,
      unanswered: this.unanswered,
      flow: this.flow,
      leases: this.leases,
      buffer: this.buffer,
      filter: this.filter,
      lockTimeoutMs: this.lockTimeoutMs,
      concurrency: this.concurrency,
      runUntil: this.runUntil,
      useRunBudget: o.runBudget !== false,
      sleepMs: this.sleepMs,
      log: this.log,
      running: () => this.slots.size,
      prefetch: () => this.prefetch,
    });
    if (this.filter.names.length === 0) this.log.warn('no task is registered in this process; the worker will claim nothing');
    this.log.info('worker started', {
      worker: this.id,
      queues: this.filter.queues?.join(',') ?? (this.filter.excludeQueues ? `all but ${this.filter.excludeQueues.join(',')}` : 'all'),
      concurrency: this.concurrency,
      tasks: this.filter.names.length,
    });
    this.started_at = Date.now();
    const durationEndsAt = o.duration && o.duration > 0 ? Date.now() + o.duration * 1000 : null;
    this.services = helpers.services;
    try {
      await this.services.start();
    } catch (err) {
      // start() rejects: nobody will call stop(), so what did start must not keep running.
      await this.services.stop();
      throw err;
    }
    if (durationEndsAt !== null) {
      this.deadlineTimer = setLongTimeout(() => this.requestStop('duration'), Math.max(0, durationEndsAt - Date.now()));
    }
    void this.loop().catch((err: unknown) => {
      this.log.error('worker loop failed', { error: err instanceof Error ? err.stack : String(err) });
      this.requestStop('fatal');
      // The loop that would have shut down is gone: shut down here, or `done` (and stop()) never resolve.
      void this.shutdown().catch((e: unknown) => this.log.error('worker shutdown failed', { error: e instanceof Error ? e.stack : String(e) }));
    });
    return this;
  }

  /** The prom-client registry holding this worker's metrics; null unless the `metrics` option is set (and the worker started). */
  metricsRegistry(): Registry | null {
    return this.metrics?.registry ?? null;
  }

  /** This worker's metrics in the Prometheus text format; empty when metrics are off. */
  async collectMetrics(): Promise<string> {
    return this.metrics ? this.metrics.collect() : '';
  }

  /** How many attempts this worker has started so far. */
  tasksRun(): number {
    return this.dispatched;
  }

  /** The tasks running now (id and name), e.g. to attribute an unhandled rejection. */
  runningTasks(): Array<{ id: string; name: string }> {
    return this.slots.values().map((s) => ({ id: s.task.id, name: s.task.name }));
  }

  /** Runs what is due now, then resolves when nothing due is left (the `--batch` mode). */
  static async drain(options: WorkerOptions = {}, settings?: Settings): Promise<WorkerSummary> {
    const w = new Worker({ ...options, batch: true });
    await w.start(settings);
    return w.done;
  }

  /**
   * Stops claiming; running tasks get `graceSeconds` to finish, then are aborted and released
   * (attempt given back). Resolves with the summary once everything is settled.
   */
  async stop(graceSeconds = this.options.grace ?? 30): Promise<WorkerSummary> {
    this.requestStop('stopped', graceSeconds);
    return this.done;
  }

  /** Aborts running tasks now and releases them (a second SIGINT/SIGTERM). */
  async stopNow(): Promise<WorkerSummary> {
    this.requestStop('stopped', 0);
    return this.done;
  }

  private requestStop(reason: StopReason, graceSeconds = this.options.grace ?? 30): void {
    if (!this.stopping) this.stopping = reason;
    // The operator's time limit makes the abort a failed attempt; a stop request gives it back.
    const release = this.stopping !== 'duration' && this.stopping !== 'fatal';
    const abortAll = () => {
      for (const slot of this.slots.values()) {
        slot.stop.abort(Object.assign(new WorkerStoppedError(release ? 'the worker stopped' : 'the worker reached its --duration limit plus --grace'), { release }));
      }
    };
    if (graceSeconds <= 0) abortAll();
    else if (!this.graceTimer) this.graceTimer = setLongTimeout(abortAll, graceSeconds * 1000);
    this.idler.poke();
  }

  /**
   * A lease a heartbeat found lost: abort the running attempt (its end logs it), or drop a
   * prefetched task that had not started. Said in the log either way: a lost lease means this
   * worker stalled past its lockTimeout, and an operator looking for why a task ran elsewhere (or
   * a second time) needs the line.
   */
  private leaseLost(token: string): void {
    const queued = this.buffer.remove(token);
    if (queued) {
      this.log.warn('lease lost before the task started; it is dropped from this worker (another worker owns it now)', { id: queued.id, name: queued.name });
      return;
    }
    this.abortSlot(token, new LeaseLostError('the lease on this task was lost (another worker claimed it, or it was deleted)'));
  }

  /** A cancel request seen by a heartbeat: abort the running attempt, or fail a prefetched task. */
  private cancelHeld(token: string): void {
    const queued = this.buffer.remove(token);
    if (queued) {
      this.settler.settle(queued, decideCancelledBeforeStart(queued));
      return;
    }
    this.abortSlot(token, new CancelledError('the task was cancelled'));
  }

  /**
   * The liveness fence (worker/liveness.ts): this worker may be cut off, and others may recover
   * its tasks. Every running attempt's signal aborts, but no attempt is abandoned: one whose
   * function stops is given back (a release), one whose function returns anyway keeps its result;
   * either write is fenced by the claim token, and made once the database answers. A function
   * that ignores its signal is thus never left running beside a run this worker started again.
   */
  private askRunningToStop(reason: Error): void {
    const running = this.slots.values();
    if (running.length > 0) this.log.warn('asking the running tasks to stop: this worker may be cut off from the database', { ids: running.map((sl) => sl.task.id).join(',') });
    for (const slot of running) slot.stop.askToStop(reason);
  }

  private abortSlot(token: string, reason: unknown): void {
    const slot = this.slots.get(token);
    if (slot) slot.stop.abort(reason);
  }

  /**
   * Claims keep the slots busy and the prefetch buffer topped up; a freed slot takes the next
   * buffered task at once (see run()), without waiting for the loop or for its predecessor's
   * result to be written.
   */
  private async loop(): Promise<void> {
    let first = true;
    while (!this.stopping) {
      // The first claim comes first; recovery and cron start right after it (and on their timer).
      // Not awaited: a pass (two lease reads, the cron slots) would otherwise stand between a
      // notification of a new task and its claim, once every 250 ms at a short poll (the start
      // latency's p99). What it recovers wakes the loop (onAnyRecovered).
      if (!first) void this.maintenance.tick(this.health.down);
      this.dispatch();
      if (this.maxTasksReached()) {
        await this.idler.until(() => this.slots.size === 0);
        this.requestStop('max-tasks');
        break;
      }
      if (this.stopping) break;
      const free = this.concurrency - this.slots.size;
      // Tasks waiting behind a running task of their key (a chain) do not fill the buffer: they
      // cannot take a free slot.
      const buffered = this.keyGate.startable(this.buffer);
      const want = free + this.prefetch - buffered;
      // Claim in batches: refill once the buffer is at or below half the prefetch, and not while
      // too many results wait to be written (the database is slow or away).
      // Nor while the liveness fence holds: nothing claimed could start.
      const refill = want > 0 && buffered <= this.prefetch / 2 && this.settler.size < this.settleBacklog && !this.liveness.fenced;
      if (refill) {
        const rows = await this.claimer.claim(want);
        this.buffer.add(rows);
        this.dispatch();
        if (first) {
          first = false;
          this.afterFirstClaim();
        }
        // A full batch: more may be due at once.
        if (rows.length > 0 && rows.length >= want) continue;
      }
      if (first) {
        first = false;
        this.afterFirstClaim();
      }
      if (this.stopping) break;
      if (!refill || this.slots.size >= this.concurrency) {
        // Busy: wake when a slot frees (and the buffer may need topping up).
        await this.idler.idle(this.sleepMs);
        continue;
      }
      if (this.options.batch && this.slots.size === 0 && this.buffer.length === 0 && !this.health.down) {
        // Recovery and cron get their pass before the batch may end (the first claim went first).
        await this.maintenance.tick(this.health.down);
        await this.settler.flush();
        const left = await this.claimer.batchLeft();
        if (left === 'none') {
          this.requestStop('batch');
          break;
        }
        // Only tasks held back by flow control: claim again after a short wait, not at once.
        if (left === 'held-back') await this.idler.idle(this.claimer.heldBackLookMs());
        continue;
      }
      await this.idler.idle(this.health.down ? this.health.backoffMs(this.sleepMs) : this.sleepMs);
    }
    await this.shutdown();
  }

  /**
   * What the first claim did not wait for, started once it has been made (or skipped): the
   * recovery and cron pass, and listening for inserts. A task inserted
   * between that claim and the LISTEN sent a notification nobody heard, so once listening the
   * loop looks again rather than sleep a whole poll.
   */
  private afterFirstClaim(): void {
    void this.maintenance.tick(this.health.down);
    void this.services.startDeferred().then(() => {
      this.flow.tasksCreated();
      this.idler.poke();
    });
  }

  private dispatched = 0;

  private maxTasksReached(): boolean {
    const max = this.options.maxTasks;
    return !!max && this.dispatched >= max;
  }

  /**
   * Starts buffered tasks in the free slots. Not while the leases may have expired (an outage, a
   * stall, a silence of the liveness beat): a beat first learns which of them another worker has
   * claimed since.
   */
  private dispatch(): void {
    // The liveness fence: nothing starts until this worker's beats land again (Liveness.onResume).
    if (this.liveness.fenced) return;
    if (this.buffer.length > 0 && this.leases.behind()) {
      if (this.confirmingLeases) return;
      this.confirmingLeases = true;
      void this.leases.beat().finally(() => {
        this.confirmingLeases = false;
        // Still behind (the database is away): the loop's next round tries again, at its backoff.
        if (!this.leases.behind()) this.dispatch();
      });
      return;
    }
    if (this.buffer.length > 0 && this.slots.size < this.concurrency && !this.stopping && this.buffer.stale()) {
      if (this.recheckingPriorities) return;
      this.recheckingPriorities = true;
      void this.claimer.recheckPriorities()
        .catch((err: unknown) => this.log.warn('could not look for due tasks of higher priority; starting the prefetched ones', { error: err instanceof Error ? err.message : String(err) }))
        .finally(() => {
          this.recheckingPriorities = false;
          this.buffer.touch();
          this.dispatch();
        });
      return;
    }
    while (this.buffer.length > 0 && this.slots.size < this.concurrency && !this.stopping && !this.maxTasksReached()) {
      // A task whose key already runs here at its limit waits in the buffer (see keyChain).
      const next = this.keyGate.open ? this.buffer.shift() : this.buffer.shiftFirst((t) => !this.keyGate.full(t));
      if (!next) break;
      this.dispatched++;
      this.run(next);
    }
  }

  /** Keyed attempts running here: a key's task waits in the buffer while its key is full. */
  private readonly keyGate = new KeyGate((name) => this.flow.plan.taskLimits.get(name)?.concurrencyLimit ?? 1);

  private get prefetch(): number {
    return this.fixedPrefetch ?? autoPrefetch(this.concurrency, this.attempts.avgTaskMs);
  }

  /** Results waiting to be written before the worker stops claiming more. */
  private get settleBacklog(): number {
    return Math.max(1000, 4 * (this.concurrency + this.prefetch));
  }

  private run(task: TaskRow): void {
    const stop = new AttemptControl();
    const slot = this.slots.add({ task, stop });
    const leaveKey = this.keyGate.enter(task);
    this.metrics?.attemptStarted();
    void this.attempts.run(task, stop).finally(() => {
      this.metrics?.attemptEnded();
      leaveKey();
      this.slots.remove(slot);
      this.dispatch();
      this.idler.poke();
    });
  }

  private onSettled(r: SettleReport): void {
    this.metrics?.attempt(r.task.name, r.task.queue, r.outcome, r.durationMs);
    reportSettled(r, { summary: this.summary, log: this.log, logInfo: this.logInfo, workerId: this.id });
  }

  private async shutdown(): Promise<void> {
    this.deadlineTimer?.clear();
    // Prefetched tasks never started: give them back at once.
    const unstarted = this.buffer.take(this.buffer.length);
    if (unstarted.length > 0) {
      await this.health.guard(() => this.store.release(unstarted), 0);
      this.summary.released += unstarted.length;
    }
    // So are the tasks of a claim the database did not answer, if it committed. Never in the way
    // of the stop: what cannot be given back now waits for its lease.
    if (this.unanswered.size > 0) {
      try {
        this.summary.released += await this.unanswered.giveBack();
      } catch (err) {
        this.log.warn('could not give back the tasks of a claim the database did not answer; their lease will expire and they will be recovered', {
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    // Running tasks finish (or are aborted by the grace timer and settle as released/failed).
    while (this.slots.size > 0) await this.idler.idle(50);
    this.graceTimer?.clear();
    await this.services.stop();
    this.metrics?.close();
    this.summary.reason = this.stopping ?? 'stopped';
    this.log.info('worker stopped', {
      worker: this.id,
      reason: this.summary.reason,
      ran: this.summary.ran,
      succeeded: this.summary.succeeded,
      failed: this.summary.failed,
      rescheduled: this.summary.rescheduled,
      // To the millisecond: a --batch run often takes less than a tenth of a second.
      seconds: (Date.now() - this.started_at) / 1000,
    });
    this.resolveDone({ ...this.summary });
  }
}

/** Creates a worker; call `start()` to run it. */
export function createWorker(options: WorkerOptions = {}): Worker {
  return new Worker(options);
}

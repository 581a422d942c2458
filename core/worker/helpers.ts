/**
 * The worker's long-lived helpers, built from its settings and wired to its hooks: the clock sync
 * (keeps the worker's clock on the database's time), the registry row, the settler (writes each
 * attempt's end), the liveness beat (a thread that tells the other workers this one is alive),
 * the lease keeper (heartbeats), maintenance (lease recovery, cron slots, warnings) and the
 * wake-up listener. They start in list order and stop in reverse: the settler's
 * waiting results are kept alive by the lease keeper, so it must stop after the settler. The
 * wake-up listener starts after the first claim (Services' deferred list).
 */
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { Settings } from '../config/settings.js';
import type { Store } from '../store/store.js';
import type { TaskRow } from '../types.js';
import { schedulerFor } from './cron-scheduler.js';
import { errorKind, type DatabaseHealth } from './db-health.js';
import { LeaseKeeper } from './lease-keeper.js';
import { Maintenance } from './maintenance.js';
import type { WorkerOptions } from './options.js';
import { Services } from './service.js';
import { Settler, type SettleReport } from './settler.js';
import { Wakeup } from './wakeup.js';
import { FlowState } from './flow-state.js';
import { Registration } from './registration.js';
import { registryBeatMs } from '../policy/status.js';
import type { WorkerMetrics } from './metrics.js';
import type { ClockSync } from './clock-sync.js';
import { Liveness } from './liveness.js';

export interface HelperContext {
  workerId: string;
  store: Store;
  clock: Clock;
  log: Logger;
  health: DatabaseHealth;
  settings: Settings;
  options: WorkerOptions;
  names: readonly string[];
  lockTimeoutMs: number;
  heartbeatMs: number;
  sleepMs: number;
  queues: readonly string[] | null;
  excludeQueues: readonly string[] | null;
  concurrency: number;
  /** Epoch ms after which a `--duration` run takes no more tasks; null without a duration. */
  runUntil: number | null;
  /** Null when metrics are off. */
  metrics: WorkerMetrics | null;
  /** Keeps `clock` on the database's time (its first comparison is the worker's, before the helpers start). */
  clockSync: ClockSync;
}

/** What the helpers ask of the worker. */
export interface WorkerHooks {
  /** The liveness fence: abort every running attempt's signal with this reason, and wait for them (see Liveness). */
  askRunningToStop(reason: Error): void;
  /** Every task whose lease must stay alive: running, prefetched, or waiting to be settled. */
  held(): TaskRow[];
  /** A heartbeat found this claim gone (another worker owns the task now). */
  onLost(token: string): void;
  /** A heartbeat found a cancel request for this claim. */
  onCancelled(token: string): void;
  onSettled(report: SettleReport): void;
  /** Ends an idle wait: a result was written, or new tasks may be due. */
  wake(): void;
  maxAttemptsFor(task: TaskRow): number;
}

export function workerHelpers(
  c: HelperContext,
  hooks: WorkerHooks,
): { settler: Settler; leases: LeaseKeeper; maintenance: Maintenance; flow: FlowState; liveness: Liveness; services: Services } {
  const metrics = c.metrics;
  const onConnection = (ok: boolean, err: unknown, startedAt: number) => {
    if (!ok && metrics) metrics.databaseError(errorKind(c.store, err));
    c.health.report(ok, err, startedAt);
  };
  if (metrics) c.health.onError = (kind) => metrics.databaseError(kind);
  const leases = new LeaseKeeper({
    store: c.store,
    workerId: c.workerId,
    clock: c.clock,
    lockTimeoutMs: c.lockTimeoutMs,
    intervalMs: c.heartbeatMs,
    held: hooks.held,
    onLost: hooks.onLost,
    onCancelled: hooks.onCancelled,
    onConnection,
    log: c.log,
  });
  const settler = new Settler({
    store: c.store,
    workerId: c.workerId,
    now: () => c.clock.now(),
    log: c.log,
    onSettled: hooks.onSettled,
    onConnection,
    onProgress: hooks.wake,
    flushMs: c.options.settleFlushMs,
    leases,
    onWritten: metrics ? (kind, seconds) => metrics.settled(kind, seconds) : undefined,
  });
  // Back from an outage: renew (or take back) the leases first, then write the results held.
  c.health.onBack(() => void leases.beat().then(() => settler.kickNow()));
  const liveness = new Liveness({
    spec: c.store.conn.spec,
    tablePrefix: c.settings.tablePrefix,
    workerId: c.workerId,
    clock: c.clock,
    log: c.log,
    timeoutMs: Math.round((c.options.livenessTimeout ?? c.settings.livenessTimeout) * 1000),
    timeouts: c.store.conn.timeouts,
    onFence: (reason) => {
      leases.markBehind();
      hooks.askRunningToStop(reason);
    },
    // A heartbeat first learns which tasks another worker took meanwhile (lost) or recovered
    // without claiming them yet (taken back); nothing starts until one has succeeded.
    onResume: () => {
      leases.markBehind();
      void leases.beat().then(hooks.wake);
    },
  });
  const maintenance = new Maintenance({
    store: c.store,
    clock: c.clock,
    log: c.log,
    workerId: c.workerId,
    names: c.names,
    maxAttemptsFor: hooks.maxAttemptsFor,
    // Recovery runs at every poll (at most 4 times a second): a dead worker's task is picked up
    // within lockTimeout plus one poll.
    everyMs: Math.max(250, Math.min(c.sleepMs, c.lockTimeoutMs / 2)),
    isDbDown: () => c.health.down,
    heldTokens: () => hooks.held().map((t) => t.claimToken!),
    // After an outage, every worker cut by it gets a whole lockTimeout to renew its leases before
    // this one treats them as dead: the same time a lease gives a worker in normal operation.
    recoverAfter: () => c.health.backAt + c.lockTimeoutMs,
    onRecovered: metrics ? (outcome) => metrics.leaseRecovered(outcome) : undefined,
    onAnyRecovered: hooks.wake,
    livenessContinuousMs: () => liveness.continuousMs(),
    priorities: () => flow.plan.priorities,
    scheduler: schedulerFor({
      store: c.store,
      clock: c.clock,
      log: c.log,
      workerId: c.workerId,
      names: c.names,
      connection: c.options.connection ?? null,
      defaultTimezone: c.settings.timezone,
      // A slot first seen later than this was missed while no worker ran (see catchUp).
      graceMs: Math.max(c.settings.cronGrace * 1000, 3 * c.sleepMs),
    }),
  });
  // Wakes the worker on inserts (and tells the flow state, made next, what changed).
  const wakeup = new Wakeup(
    c.store,
    hooks.wake,
    c.log,
    () => flow.invalidate(),
    () => flow.tasksCreated(),
    { listenUrl: c.settings.listenUrl, sleepMs: c.sleepMs },
  );
  // Queue states are read at most once per poll, and at once when PostgreSQL says they changed.
  const flow = new FlowState({
    store: c.store,
    names: c.names,
    log: c.log,
    everyMs: Math.min(c.sleepMs, 5000),
    declared: c.settings.queues,
    workerId: c.workerId,
    nowMs: () => c.clock.now(),
    hearing: () => wakeup.hearing,
  });
  const registration = new Registration({
    store: c.store,
    clock: c.clock,
    log: c.log,
    workerId: c.workerId,
    names: c.names,
    queues: c.queues,
    excludeQueues: c.excludeQueues,
    concurrency: c.concurrency,
    // Its own, shorter beat: a dead worker's row goes stale within seconds (see Maintenance.recoverDeadWorkers).
    heartbeatMs: registryBeatMs(c.heartbeatMs),
    runUntil: c.runUntil,
  });
  // Before the first claim: the clock sync (leases and the registry row are written in the
  // database's time), then the registry row (dead-worker detection must find this worker's row
  // fresh before it holds leases: a stale row left under the same --worker-id would mark the new
  // claims as a dead worker's) and the queue states (the claim obeys pauses and limits). Those two
  // write and read different tables, so they start together. Listening for inserts waits until
  // the first claim is under way: on PostgreSQL it holds a connection of the pool, which the claim
  // would otherwise wait to open (see Worker.loop).
  // The liveness beat right after the registry row it beats on (its thread starts in the
  // background), and it stops after every helper but the registration: until the last result is
  // written, other workers must not take this worker for dead.
  const services = new Services([c.clockSync, [registration, flow], liveness, leases, settler, maintenance], [wakeup], (err) =>
    c.log.warn('could not start listening for new tasks; finding them by polling', { error: err instanceof Error ? err.message : String(err) }),
  );
  return { settler, leases, maintenance, flow, liveness, services };
}

/**
 * The worker's claims: how many tasks to take and under which limits (paused queues, flow
 * control, the run budget of a duration run), each claim tracked so that tasks of a claim the
 * database never answered are given back, and the look for due tasks that outrank the prefetched
 * ones before those start (whose rows take the place of the lowest-ranked buffered ones). The
 * worker decides when to claim and where the loop's claimed rows go.
 */
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { getRegistered } from '../definition/registry.js';
import { onlyOnePerKey, underFlowControl, type RunBudget } from '../store/claim.js';
import { LOOK_EVERY_MS } from '../store/claim-plan.js';
import type { ClaimFilter, Store } from '../store/store.js';
import type { TaskRow } from '../types.js';
import type { DatabaseHealth } from './db-health.js';
import type { FlowState } from './flow-state.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { WorkerMetrics } from './metrics.js';
import type { PrefetchBuffer } from './prefetch.js';
import type { WorkerSummary } from './report.js';
import type { Settler } from './settler.js';
import type { UnansweredClaims } from './unanswered-claims.js';

/**
 * Where the only limit is one task per key: how many tasks of one key a claim may take while no
 * other worker holds the key. They wait in the buffer and start one at a time, each as soon as
 * the one before it ends, without a claim in between (a claim takes at most one task per key
 * otherwise, and a key's next task waited for the next claim).
 */
const KEY_CHAIN = 4;

export interface ClaimContext {
  workerId: string;
  store: Store;
  clock: Clock;
  health: DatabaseHealth;
  unanswered: UnansweredClaims;
  flow: FlowState;
  leases: LeaseKeeper;
  settler: Settler;
  buffer: PrefetchBuffer;
  filter: ClaimFilter;
  lockTimeoutMs: number;
  concurrency: number;
  /** The worker's counts: tasks given back add to `released`. */
  summary: WorkerSummary;
  metrics: WorkerMetrics | null;
  /** Epoch ms (worker clock) when a duration run's time, grace included, is up; null otherwise. */
  runUntil: number | null;
  /** False when the run budget is turned off (the `runBudget` option). */
  useRunBudget: boolean;
  /** The poll interval: how long a batch run claims tasks that flow control holds back. */
  sleepMs: number;
  log: Logger;
  /** Attempts running in this worker now. */
  running(): number;
  /** The prefetch now (auto follows the attempts' average duration). */
  prefetch(): number;
}

export class Claimer {
  /** The clock's time, for a claim to read again after waiting for the flow lock. */
  private readonly now: () => number;
  /** A batch run found only tasks under flow control due, and has claimed none since (performance.now()). */
  private heldBackSince: number | null = null;

  constructor(private readonly c: ClaimContext) {
    this.now = () => c.clock.now();
  }

  async claim(limit: number): Promise<TaskRow[]> {
    const c = this.c;
    // After a lapse of the leases, a beat takes back the ones recovered but not re-claimed first:
    // claimed by this worker again, they would run twice. Nothing is claimed until one succeeds.
    if (!(await c.leases.caughtUp())) return [];
    // Before claiming more: the tasks of a claim whose answer was lost are this worker's and idle.
    if (c.unanswered.size > 0) {
      const given = await c.health.guard(() => c.unanswered.giveBack(), null);
      if (given === null) return [];
      c.summary.released += given;
    }
    const rows = await c.health.guard(
      () =>
        c.flow.refresh().then(() => {
          const nowMs = c.clock.now();
          // Keyed and limited tasks are claimed for the free slots and at most `concurrency` ahead:
          // a prefetched task holds its limit's slot and its rate-window start while it waits, and
          // a deep buffer of one key's tasks would run ahead of a key enqueued after them. Not
          // where the only limit is one task per key: a buffered task then holds no slot but its
          // own key's, and the buffer at most a chain (KEY_CHAIN) of each key, taken in turns, so
          // they are prefetched like others. No chains for a worker that prefetches nothing.
          const plan = c.flow.plan;
          const flowHeld = c.buffer.toArray().filter((t) => underFlowControl(plan, t)).length;
          const onePerKey = onlyOnePerKey(plan, c.filter);
          const chain = onePerKey && c.prefetch() > 0;
          const flowLimit = onePerKey ? limit : Math.max(0, c.concurrency - c.running() + c.concurrency - flowHeld);
          // Tasks that ended here but whose results wait to be written hold no slot in this
          // worker's claims: a key of limit 1 is served again as soon as its task ends.
          const ended = c.settler.ended;
          const request = { ...c.filter, workerId: c.workerId, nowMs, now: this.now, leaseMs: c.lockTimeoutMs, limit, flow: plan, flowLimit, budget: this.budget(nowMs), ended, keyChain: chain ? KEY_CHAIN : undefined };
          const metrics = c.metrics;
          if (!metrics) return c.unanswered.track((token) => c.store.claim({ ...request, token }));
          const started = performance.now();
          return c.unanswered.track((token) => c.store.claim({ ...request, token })).then((rows) => {
            metrics.claimed(rows.length, (performance.now() - started) / 1000);
            return rows;
          });
        }),
      [],
    );
    // A batch run's wait for held-back tasks starts afresh after a claim that took some, or one
    // made while the database was away: a wait begun before an outage ends no run after it.
    if (rows.length > 0 || c.health.down) this.heldBackSince = null;
    return rows;
  }

  /**
   * What a batch run has left to do once nothing runs here: 'none' when nothing it could claim is
   * due (a non-locking count: an empty SKIP LOCKED claim proves nothing), or when only tasks under
   * flow control are due (a rate limit's window used up, a concurrency limit that other workers'
   * tasks fill) and none of them could be claimed for a poll (at least 1 s). Those run at the next
   * run, as a paused queue's do: waited for, a rate limit of one an hour kept a batch run going
   * for the hour. 'held-back' while that wait lasts (the first time, 'claimable': a key freed
   * when a result was written is claimed at once).
   */
  async batchLeft(): Promise<'none' | 'held-back' | 'claimable'> {
    const c = this.c;
    const nowMs = c.clock.now();
    const plan = c.flow.plan;
    const budget = this.budget(nowMs);
    const due = await c.health.guard(() => c.store.countReady(c.filter, nowMs, plan.pausedQueues, budget, plan.priorities), 0);
    if (due === 0) return 'none';
    const unlimited = await c.health.guard(() => c.store.countReadyUnlimited(c.filter, nowMs, plan, budget, plan.priorities), 1);
    if (unlimited > 0) {
      this.heldBackSince = null;
      return 'claimable';
    }
    const now = performance.now();
    if (this.heldBackSince === null) {
      this.heldBackSince = now;
      return 'claimable';
    }
    if (now - this.heldBackSince < this.heldBackWindowMs()) return 'held-back';
    c.log.info('batch run ends with tasks held back by flow control; they run at a later run', { worker: c.workerId, due });
    return 'none';
  }

  /**
   * How long a batch run keeps claiming tasks that flow control holds back: a poll, at least 1 s,
   * which also covers the 250 ms for which a claim goes by its last look for keyed tasks and
   * queues (LOOK_EVERY_MS), so a task that the run's last task enqueued is still found.
   */
  heldBackWindowMs(): number {
    return Math.max(this.c.sleepMs, 1000);
  }

  /**
   * How often it claims them meanwhile: about five times in the window, at most once a poll. Each
   * such claim waits its turn at the flow lock every worker shares.
   */
  heldBackLookMs(): number {
    return Math.min(this.c.sleepMs, Math.max(LOOK_EVERY_MS, this.heldBackWindowMs() / 5));
  }

  /**
   * Before starting tasks claimed a while ago: claims the due tasks that rank above those about to
   * start, if any came in since, so that they start first; as many of the lowest-ranked prefetched
   * tasks are given back (attempt returned), for this or another worker to claim again. One read
   * when nothing outranks them.
   */
  async recheckPriorities(): Promise<void> {
    const c = this.c;
    const starting = Math.min(c.concurrency - c.running(), c.buffer.length);
    if (starting <= 0) return;
    const floor = c.buffer.at(starting - 1)!.priority;
    const nowMs = c.clock.now();
    if (!(await c.health.guard(() => c.store.outranked(c.filter, nowMs, floor, c.flow.plan.pausedQueues, c.flow.plan.priorities), false))) return;
    // The same claim as the loop's: paused queues, limits and the run budget hold here too.
    const started = performance.now();
    const rows = await c.health.guard(
      () =>
        c.unanswered.track((token) =>
          c.store.claim({ ...c.filter, workerId: c.workerId, nowMs, now: this.now, leaseMs: c.lockTimeoutMs, limit: starting, above: floor, flow: c.flow.plan, budget: this.budget(nowMs), token }),
        ),
      [],
    );
    c.metrics?.claimed(rows.length, (performance.now() - started) / 1000);
    if (rows.length === 0) return;
    const surplus = c.buffer.displace(rows);
    try {
      await c.store.release(surplus);
      c.summary.released += surplus.length;
    } catch {
      // Not given back (the database is away): they stay this worker's, to run after the others.
      c.buffer.add(surplus);
    }
  }

  /**
   * The run budget of a duration run: the time left, and the run-time limits the task
   * definitions declare (a task's stored maxRunTime, when it has one, is compared in the claim).
   */
  budget(nowMs: number): RunBudget | undefined {
    const c = this.c;
    if (c.runUntil === null || !c.useRunBudget) return undefined;
    const defaults = new Map<string, number>();
    for (const name of c.filter.names) {
      const seconds = getRegistered(name)?.options.maxRunTime;
      if (seconds !== undefined) defaults.set(name, Math.round(seconds * 1000));
    }
    return { remainingMs: Math.max(0, c.runUntil - nowMs), maxRunTimeMsByName: defaults };
  }
}

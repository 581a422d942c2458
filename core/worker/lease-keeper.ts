/**
 * Heartbeats: renews the leases of every task this worker holds (running, prefetched, or waiting
 * for its result to be written), and learns which leases were lost and which tasks were cancelled.
 *
 * A lease that expired while the worker could not renew it (an outage, a stall) and that another
 * worker's recovery pass made READY, but that nobody has claimed since, is taken back (see
 * Store.heartbeat): the worker still runs the task, or holds its result.
 *
 * It runs on the worker's event loop. A task that blocks the loop (synchronous CPU work) longer
 * than `lockTimeout` therefore stops the heartbeats, its lease expires, and another worker may run
 * it again: run CPU-heavy work in a worker thread or child process, or raise `lockTimeout`.
 */
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { Store } from '../store/store.js';
import type { TaskRow } from '../types.js';
import type { Service } from './service.js';

export interface LeaseKeeperOptions {
  store: Store;
  workerId: string;
  clock: Clock;
  lockTimeoutMs: number;
  intervalMs: number;
  held: () => TaskRow[];
  onLost: (token: string) => void;
  onCancelled: (token: string) => void;
  /** `startedAt`: when the operation that succeeded or failed began (performance.now()). */
  onConnection: (ok: boolean, err: unknown, startedAt: number) => void;
  log: Logger;
}

export class LeaseKeeper implements Service {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  /** The clock's time when the last successful beat began (every held lease runs past it + lockTimeout). */
  private renewedAt: number;
  /** A beat failed since the last one that succeeded (or markBehind() was called since one began). */
  private failing = false;
  /** Counts markBehind() calls: a beat that began before the last one does not clear it. */
  private marks = 0;

  constructor(private readonly o: LeaseKeeperOptions) {
    this.renewedAt = o.clock.now();
  }

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.o.intervalMs);
    this.timer.unref();
  }

  /**
   * True when the held leases may have expired: the last beat failed, or none succeeded for a
   * whole lockTimeout (a stall). A result is then written after a beat, which takes back any
   * lease recovered meanwhile, so that the result is recorded as the claim left the task.
   */
  behind(): boolean {
    return this.failing || this.o.clock.now() - this.renewedAt >= this.o.lockTimeoutMs;
  }

  /**
   * Holds the leases as possibly lost until the next beat that succeeds: the worker's liveness
   * beats stopped for long enough that another worker may have recovered its tasks.
   */
  markBehind(): void {
    this.failing = true;
    this.marks++;
  }

  /**
   * Whether the held leases are renewed now: at once when not behind, else after a beat, false
   * when that beat failed. A beat begun while the database was away (which this joins) fails even
   * once it is back: a result written or a claim made then, before any beat took back a lease
   * another worker recovered meanwhile, ran that task a second time (HOSTS-01).
   */
  async caughtUp(): Promise<boolean> {
    if (!this.behind()) return true;
    await this.beat();
    return !this.behind();
  }

  /** Renews every held lease now (joins a beat under way). */
  beat(): Promise<void> {
    if (!this.inFlight) this.inFlight = this.renew().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async renew(): Promise<void> {
    const beganAt = this.o.clock.now();
    const marks = this.marks;
    const tasks = this.o.held().filter((t) => t.claimToken);
    if (tasks.length === 0) {
      // Nothing held, so nothing to renew or take back: no longer behind either (an idle worker
      // whose one beat failed stayed behind for good, and the claim waits for a beat to succeed).
      this.renewedAt = beganAt;
      if (marks === this.marks) this.failing = false;
      return;
    }
    const startedAt = performance.now();
    try {
      const { lost, cancelled, retaken } = await this.o.store.heartbeat(this.o.workerId, tasks, beganAt + this.o.lockTimeoutMs);
      this.renewedAt = beganAt;
      if (marks === this.marks) this.failing = false;
      this.o.onConnection(true, null, startedAt);
      for (const token of retaken) {
        const t = tasks.find((x) => x.claimToken === token)!;
        this.o.log.warn('took back the lease of a task that another worker recovered while this one could not renew it (nobody had claimed it since)', {
          id: t.id,
          name: t.name,
        });
      }
      for (const token of lost) this.o.onLost(token);
      for (const token of cancelled) this.o.onCancelled(token);
    } catch (err) {
      this.failing = true;
      if (this.o.store.dialect.classifyError(err) === 'connection') this.o.onConnection(false, err, startedAt);
      else this.o.log.error('heartbeat failed', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }
}

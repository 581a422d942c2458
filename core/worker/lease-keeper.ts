/**
 * Heartbeats: renews the leases of every task this worker holds (running, prefetched, or waiting
 * for its result to be written), and learns which leases were lost and which tasks were cancelled.
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

  constructor(private readonly o: LeaseKeeperOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.inFlight) this.inFlight = this.beat().finally(() => (this.inFlight = null));
    }, this.o.intervalMs);
    this.timer.unref();
  }

  /** Renews every held lease now. */
  async beat(): Promise<void> {
    const tasks = this.o.held().filter((t) => t.claimToken);
    if (tasks.length === 0) return;
    const startedAt = performance.now();
    try {
      const { lost, cancelled } = await this.o.store.heartbeat(
        this.o.workerId,
        tasks.map((t) => ({ id: t.id, claimToken: t.claimToken! })),
        this.o.clock.now() + this.o.lockTimeoutMs,
      );
      this.o.onConnection(true, null, startedAt);
      for (const token of lost) this.o.onLost(token);
      for (const token of cancelled) this.o.onCancelled(token);
    } catch (err) {
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

/**
 * The worker's row in the worker registry: written when it starts (what it runs, from which
 * queues, with which limits), refreshed on its own heartbeat timer (one UPDATE per beat, never per
 * task), and marked stopped on a clean stop. It also prunes, hourly, rows of workers gone for a
 * week and recorded rate-limit starts older than every window.
 */
import os from 'node:os';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { bgtasksVersion } from '../base/version.js';
import { getRegistered } from '../definition/registry.js';
import type { TaskLimits } from '../policy/flow.js';
import type { Store } from '../store/store.js';
import { beatWorker, pruneWorkers, registerWorker, stopWorker, type WorkerRecord } from '../store/workers.js';
import { pruneRateStarts } from '../store/queues.js';
import { pidNamespace } from './process-identity.js';
import type { Service } from './service.js';

/** Rows of workers whose last heartbeat is older than this are deleted. */
const KEPT_MS = 7 * 86_400_000;
const PRUNE_EVERY_MS = 3_600_000;

export interface RegistrationOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  workerId: string;
  names: readonly string[];
  queues: readonly string[] | null;
  excludeQueues: readonly string[] | null;
  concurrency: number;
  heartbeatMs: number;
  /** Epoch ms after which a `--duration` run takes no more tasks (deadline plus grace). */
  runUntil: number | null;
}

export class Registration implements Service {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private prunedAt = -Infinity;

  constructor(private readonly o: RegistrationOptions) {}

  private record(): Omit<WorkerRecord, 'stoppedAt'> {
    const now = this.o.clock.now();
    const limits: Record<string, TaskLimits> = {};
    for (const name of this.o.names) {
      const d = getRegistered(name)?.options;
      // Every name, with the run-time limit its definition declares (what a run budget compares;
      // a task with none of its own or its definition's is not held back by a budget).
      limits[name] = {
        concurrency: d?.concurrency ?? null,
        rateLimit: d?.rateLimit ?? null,
        concurrencyLimit: d?.concurrencyLimit ?? null,
        maxAttempts: d?.maxAttempts ?? null,
        maxRunTime: d?.maxRunTime ?? null,
      };
    }
    return {
      id: this.o.workerId,
      host: os.hostname(),
      pid: process.pid,
      version: bgtasksVersion(),
      queues: this.o.queues ? [...this.o.queues] : null,
      excludeQueues: this.o.excludeQueues ? [...this.o.excludeQueues] : null,
      names: [...this.o.names],
      limits,
      concurrency: this.o.concurrency,
      startedAt: now,
      heartbeatAt: now,
      heartbeatMs: this.o.heartbeatMs,
      runUntil: this.o.runUntil,
      pidNamespace: pidNamespace(),
    };
  }

  async start(): Promise<void> {
    try {
      await registerWorker(this.o.store, this.record());
    } catch (err) {
      // The registry is for operators; a worker that cannot write its row still runs tasks.
      this.o.log.warn('could not register this worker in the worker registry; it runs anyway', { error: err instanceof Error ? err.message : String(err) });
    }
    this.timer = setInterval(() => {
      this.inFlight ??= this.beat().finally(() => (this.inFlight = null));
    }, this.o.heartbeatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      const now = this.o.clock.now();
      if (!(await beatWorker(this.o.store, this.o.workerId, now))) await registerWorker(this.o.store, this.record());
      if (Date.now() - this.prunedAt >= PRUNE_EVERY_MS) {
        this.prunedAt = Date.now();
        await pruneWorkers(this.o.store, now - KEPT_MS);
        await pruneRateStarts(this.o.store, now);
      }
    } catch {
      // An outage is reported by the worker's own queries; the next beat tries again.
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
    try {
      await stopWorker(this.o.store, this.o.workerId, this.o.clock.now());
    } catch {
      // Without the goodbye the row simply reads as lost after a few missed beats.
    }
  }
}

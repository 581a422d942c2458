/**
 * What the worker knows of flow control when it claims: the limits its task files declare, and
 * the paused and limited queues, read from the queues table at most once per poll (at once on
 * PostgreSQL, told by a notification). The claim itself enforces them (store/claim.ts).
 *
 * While notifications are heard (PostgreSQL, listening, self-test passed), a change is known at
 * once, so the table is read at most every HEARD_READ_MS even under a short poll: at
 * `--sleep 0.01` the read came before every claim, in the path of each task's start.
 */
import type { Logger } from '../base/log.js';
import { getRegistered } from '../definition/registry.js';
import type { QueueLimits, TaskLimits } from '../policy/flow.js';
import { emptyFlowPlan, type FlowPlan } from '../store/claim.js';
import { queueRecords, setQueueLimits } from '../store/queues.js';
import type { Settings } from '../config/settings.js';
import type { Store } from '../store/store.js';
import type { Service } from './service.js';

/** How long a reading holds while changes are heard at once (the default poll). */
const HEARD_READ_MS = 5000;

export class FlowState implements Service {
  readonly plan: FlowPlan = emptyFlowPlan();
  private readAt = -Infinity;
  private reading: Promise<void> | null = null;

  constructor(
    private readonly o: {
      store: Store;
      names: readonly string[];
      log: Logger;
      /** How long a reading of the queues table holds (the poll interval). */
      everyMs: number;
      /** Queue limits from the `queues` setting, written at start (the setting wins at every start). */
      declared: Settings['queues'];
      workerId: string;
      nowMs: () => number;
      /** Whether changes are notified at once now (Wakeup.hearing). */
      hearing?: () => boolean;
    },
  ) {}

  async start(): Promise<void> {
    const limits = new Map<string, TaskLimits>();
    for (const name of this.o.names) {
      const o = getRegistered(name)?.options;
      if (!o) continue;
      if (o.concurrencyKey || o.concurrencyLimit) this.plan.keyedNames.add(name);
      if (o.concurrency || o.rateLimit || o.concurrencyLimit) {
        limits.set(name, { concurrency: o.concurrency ?? null, rateLimit: o.rateLimit ?? null, concurrencyLimit: o.concurrencyLimit ?? null });
      }
    }
    this.plan.taskLimits = limits;
    for (const [name, l] of Object.entries(this.o.declared)) await setQueueLimits(this.o.store, name, l, this.o.workerId, this.o.nowMs());
    await this.refresh();
  }

  async stop(): Promise<void> {
    await this.reading;
  }

  /** Forgets the last reading (a notification said the queues changed). */
  invalidate(): void {
    this.readAt = -Infinity;
  }

  /**
   * New tasks were inserted: the next claim looks for keyed tasks, and for the queues holding
   * tasks, again, rather than trusting a look of up to 250 ms ago.
   */
  tasksCreated(): void {
    this.plan.keyedSeenAt = -Infinity;
    this.plan.queuesSeenAt = -Infinity;
    this.plan.plainEmptyAt = -Infinity;
  }

  /** Reads the queues table again when the last reading is older than one poll (see above). */
  async refresh(): Promise<void> {
    const holdMs = this.o.hearing?.() ? Math.max(this.o.everyMs, HEARD_READ_MS) : this.o.everyMs;
    if (Date.now() - this.readAt < holdMs) return;
    this.reading ??= this.read().finally(() => (this.reading = null));
    await this.reading;
  }

  private async read(): Promise<void> {
    const records = await queueRecords(this.o.store);
    const startedAt = Date.now();
    const paused = new Set<string>();
    const limited = new Map<string, QueueLimits>();
    for (const q of records) {
      if (q.paused) paused.add(q.name);
      if (q.concurrency !== null || q.rateLimit !== null) limited.set(q.name, { paused: q.paused, concurrency: q.concurrency, rateLimit: q.rateLimit });
    }
    const was = [...this.plan.pausedQueues].sort().join(',');
    this.plan.pausedQueues = paused;
    this.plan.queueLimits = limited;
    const now = [...paused].sort().join(',');
    if (now !== was) this.o.log.info('paused queues changed; tasks in a paused queue are not claimed', { paused: now || '(none)' });
    this.readAt = startedAt;
  }
}

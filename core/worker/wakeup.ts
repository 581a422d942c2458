/**
 * Wakes an idle worker when tasks are inserted, where the database can say so (PostgreSQL's
 * LISTEN/NOTIFY), and when this same process enqueues. Polling stays the fallback: a lost
 * notification, or a listening connection that broke, costs at most one poll. A broken LISTEN
 * connection is opened again after a pause.
 */
import { events } from '../base/events.js';
import type { Logger } from '../base/log.js';
import type { Store } from '../store/store.js';
import type { Service } from './service.js';

const RELISTEN_MS = 5_000;

export class Wakeup implements Service {
  private stopListening: (() => Promise<void>) | null = null;
  private offCreated: (() => void) | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  private warned = false;

  constructor(
    private readonly store: Store,
    private readonly wake: () => void,
    private readonly log: Logger,
    /** A queue was paused, resumed or limited (PostgreSQL tells at once; elsewhere the next poll reads it). */
    private readonly queuesChanged: () => void = () => {},
    /** Tasks were inserted (before the wake-up: what the claim remembers of waiting tasks is stale). */
    private readonly tasksCreated: () => void = () => {},
  ) {}

  private readonly notified = (payload: string): void => {
    if (payload === 'queues') this.queuesChanged();
    else this.tasksCreated();
    this.wake();
  };

  async start(): Promise<void> {
    // Tasks enqueued by this process (an app embedding its worker, tests) wake it directly.
    this.offCreated = events.on('task:created', () => {
      this.tasksCreated();
      this.wake();
    });
    await this.listen();
  }

  private async listen(): Promise<void> {
    const listen = this.store.dialect.listen;
    if (!listen || this.stopped) return;
    try {
      this.stopListening = await listen.call(this.store.dialect, this.store.knex, this.store.tables, this.notified, (err) => this.lost(err));
      if (this.warned) this.log.info('listening for new tasks again');
      this.warned = false;
    } catch (err) {
      this.lost(err);
    }
  }

  private lost(err: unknown): void {
    if (this.stopped) return;
    const stop = this.stopListening;
    this.stopListening = null;
    if (stop) void stop().catch(() => {});
    if (!this.warned) {
      this.warned = true;
      this.log.warn('cannot listen for new tasks; polling until it can again', { error: err instanceof Error ? err.message : String(err) });
    }
    if (!this.retry) {
      this.retry = setTimeout(() => {
        this.retry = null;
        void this.listen();
      }, RELISTEN_MS);
      this.retry.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.offCreated?.();
    const stop = this.stopListening;
    this.stopListening = null;
    if (stop) await stop().catch(() => {});
  }
}

/**
 * Wakes an idle worker when tasks are inserted, where the database can say so (PostgreSQL's
 * LISTEN/NOTIFY), and when this same process enqueues. Polling stays the fallback: a lost
 * notification, or a listening connection that broke, costs at most one poll. A broken LISTEN
 * connection is opened again after a pause. The first LISTEN checks that notifications arrive at
 * all (a pooler in transaction mode swallows them); `listenUrl` gives it a direct connection.
 */
import { randomUUID } from 'node:crypto';
import { events } from '../base/events.js';
import type { Logger } from '../base/log.js';
import type { DatabaseSpec } from '../config/database-spec.js';
import { closeConnection, connectPrivate, type Connection } from '../store/connection.js';
import type { Store } from '../store/store.js';
import type { Service } from './service.js';

const RELISTEN_MS = 5_000;
/** How long the first LISTEN waits for its own test notification before it concludes none arrive. */
const SELF_TEST_MS = 5_000;
const SELF_TEST_PREFIX = 'selftest:';

export interface WakeupOptions {
  /** PostgreSQL: listen on this direct connection instead of one of the store's pool (the `listenUrl` setting). */
  listenUrl?: DatabaseSpec | null;
  /** The worker's poll interval, for the notice when notifications do not arrive. */
  sleepMs?: number;
  /** Overrides SELF_TEST_MS (tests). */
  selfTestMs?: number;
}

export class Wakeup implements Service {
  private stopListening: (() => Promise<void>) | null = null;
  private offCreated: (() => void) | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  private warned = false;
  /** The private connection opened for `listenUrl`, closed on stop. */
  private listenConn: Promise<Connection> | null = null;
  private selfTested = false;
  /** What the first LISTEN's self-test found: `unknown` until it ends, or when it could not be sent. */
  delivery: 'pending' | 'arrived' | 'lost' | 'unknown' = 'pending';
  private selfTest: { token: string; arrived: () => void } | null = null;

  constructor(
    private readonly store: Store,
    private readonly wake: () => void,
    private readonly log: Logger,
    /** A queue was paused, resumed or limited (PostgreSQL tells at once; elsewhere the next poll reads it). */
    private readonly queuesChanged: () => void = () => {},
    /** Tasks were inserted (before the wake-up: what the claim remembers of waiting tasks is stale). */
    private readonly tasksCreated: () => void = () => {},
    private readonly o: WakeupOptions = {},
  ) {}

  /**
   * Whether a change is heard at once: listening, on a connection whose self-test notification
   * arrived. What a worker reads to learn of changes may then be read less often (flow-state.ts).
   */
  get hearing(): boolean {
    return this.stopListening !== null && this.delivery === 'arrived';
  }

  private readonly notified = (payload: string): void => {
    if (payload.startsWith(SELF_TEST_PREFIX)) {
      if (this.selfTest?.token === payload) this.selfTest.arrived();
      return;
    }
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
    if (this.o.listenUrl && !this.store.dialect.listen) {
      this.log.warn('listenUrl is ignored: only PostgreSQL listens for new tasks', { database: this.store.conn.spec.display });
    }
    await this.listen();
  }

  private async listen(): Promise<void> {
    const listen = this.store.dialect.listen;
    if (!listen || this.stopped) return;
    try {
      const knex = this.o.listenUrl ? (await (this.listenConn ??= this.openListenConnection(this.o.listenUrl))).knex : this.store.knex;
      const stop = await listen.call(this.store.dialect, knex, this.store.tables, this.notified, (err) => this.lost(err));
      if (this.stopped) {
        // Stopped while the LISTEN was being sent: give its connection back at once.
        await stop().catch(() => {});
        return;
      }
      this.stopListening = stop;
      if (this.warned) {
        this.log.info('listening for new tasks again');
        // What was notified while nobody listened is lost: read it all again.
        this.queuesChanged();
        this.tasksCreated();
      }
      this.warned = false;
      if (!this.selfTested) {
        this.selfTested = true;
        // Not awaited: the worker claims meanwhile; the test only decides whether to keep listening.
        void this.checkDelivery();
      }
    } catch (err) {
      this.lost(err);
    }
  }

  private openListenConnection(spec: DatabaseSpec): Promise<Connection> {
    const p = connectPrivate(spec, this.store.conn.timeouts);
    // A failed open is tried again at the next listen.
    p.catch(() => {
      if (this.listenConn === p) this.listenConn = null;
    });
    return p;
  }

  /**
   * Sends a test notification through the store's own connections and waits for it on the
   * listening one. Through a pooler in transaction mode (PgBouncer's default on most managed
   * PostgreSQL) LISTEN goes through without an error, but the session it was sent on is handed to
   * other clients, so nothing ever arrives: say so once, stop listening, and rely on polls.
   * A test that could not be sent (the database is away) proves nothing and says nothing.
   */
  private async checkDelivery(): Promise<void> {
    const notify = this.store.dialect.notify;
    if (!notify || this.stopped) {
      this.delivery = 'unknown';
      return;
    }
    const token = `${SELF_TEST_PREFIX}${randomUUID()}`;
    let timer: NodeJS.Timeout | undefined;
    const arrived = new Promise<boolean>((resolve) => {
      this.selfTest = { token, arrived: () => resolve(true) };
      timer = setTimeout(() => resolve(false), this.o.selfTestMs ?? SELF_TEST_MS);
      timer.unref();
    });
    try {
      await notify.call(this.store.dialect, this.store.knex, this.store.tables, token);
    } catch {
      clearTimeout(timer);
      this.selfTest = null;
      this.delivery = 'unknown';
      return;
    }
    const ok = await arrived;
    clearTimeout(timer);
    this.selfTest = null;
    this.delivery = ok ? 'arrived' : 'lost';
    if (ok || this.stopped) return;
    this.log.warn(
      `notifications do not arrive (a pooler in transaction mode?); polling every ${(this.o.sleepMs ?? 5000) / 1000} s (--sleep); set listenUrl to a direct connection`,
      { listening_on: this.o.listenUrl ? this.o.listenUrl.display : this.store.conn.spec.display },
    );
    // Stop for good: a LISTEN that cannot hear holds a connection for nothing.
    this.stopped = true;
    const stop = this.stopListening;
    this.stopListening = null;
    if (stop) await stop().catch(() => {});
  }

  private lost(err: unknown): void {
    if (this.stopped) return;
    const stop = this.stopListening;
    this.stopListening = null;
    // Not hearing any more: the queue states last read may be older than a poll now.
    this.queuesChanged();
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
    const conn = this.listenConn;
    this.listenConn = null;
    if (conn) await conn.then(closeConnection).catch(() => {});
  }
}

/**
 * Whether the worker can reach its database, as its queries find out: one warning when the
 * database goes away (or stays locked past the retries) and one when it is back (not one per
 * poll), and the capped backoff of its polls meanwhile.
 */
import type { Logger } from '../base/log.js';
import type { Store } from '../store/store.js';
import { driverMessage } from '../store/storable.js';
import { poolProblem } from '../store/connection.js';
import { isErrorKind } from '../errors.js';

/**
 * The kind of a failed operation, for the database-errors metric: the dialect's classification,
 * or `missing-table` for the store's NotMigratedError (its wrapping of one), else `other`.
 */
export function errorKind(store: Store, err: unknown): string {
  return store.dialect.classifyError(err) ?? (isErrorKind(err, 'NotMigratedError') ? 'missing-table' : 'other');
}

const MAX_BACKOFF_MS = 30_000;

export class DatabaseHealth {
  /** True while the database is unreachable (or busy: see guard). */
  down = false;
  /** The outage under way is lock waits that outlasted the store's retries, not a lost connection. */
  private busy = false;
  /** When (performance.now()) the database was last found reachable again after an outage. */
  backAt = -Infinity;
  private polls = 0;
  private noticedAt = 0;
  private readonly backListeners: Array<() => void> = [];
  /** Told of every failed operation seen here, by kind (the metrics count them). */
  onError: ((kind: string) => void) | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  /**
   * Records how an operation begun at `startedAt` (performance.now()) ended. Only one begun
   * after the outage was noticed counts as "back": one already under way when the connection
   * broke can still complete and would otherwise report a recovery that has not happened.
   */
  report(ok: boolean, err: unknown, startedAt: number): void {
    if (ok) {
      if (!this.down || startedAt < this.noticedAt) return;
      this.down = false;
      this.polls = 0;
      this.backAt = performance.now();
      this.log.warn(this.busy ? 'database no longer busy' : 'database reachable again', { database: this.store.conn.spec.display });
      for (const fn of this.backListeners) fn();
      return;
    }
    if (this.down) return;
    this.down = true;
    this.busy = this.store.dialect.classifyError(err) === 'retry';
    this.noticedAt = performance.now();
    this.log.warn(
      this.busy
        ? 'database busy: statements still time out waiting for locks (or deadlock) after their retries; retrying with backoff, results are kept until they can be recorded'
        : 'database unreachable; retrying with backoff, results are kept until they can be recorded',
      {
        database: this.store.conn.spec.display,
        // Not the whole message: knex puts the statement first, which can be megabytes of a result.
        error: poolProblem(this.store.knex, err) ?? driverMessage(err),
      },
    );
  }

  /** Calls `fn` each time the database is found reachable again after an outage. */
  onBack(fn: () => void): void {
    this.backListeners.push(fn);
  }

  /**
   * Runs a query. A connection failure is reported and gives `fallback`, and so does a lock-wait
   * timeout or deadlock that outlasted the store's retries (a table lock, a lock row held by
   * another session): the worker waits it out with backoff, as it does an outage, instead of
   * stopping. Other errors throw.
   */
  async guard<T>(op: () => Promise<T>, fallback: T): Promise<T> {
    const startedAt = performance.now();
    try {
      const r = await op();
      if (this.down) this.report(true, null, startedAt);
      return r;
    } catch (err) {
      const kind = this.store.dialect.classifyError(err);
      this.onError?.(errorKind(this.store, err));
      if (kind !== 'connection' && kind !== 'retry') throw err;
      this.report(false, err, startedAt);
      return fallback;
    }
  }

  /** The wait before the next poll while down: doubling from max(sleep, 1 s), capped at 30 s. */
  backoffMs(sleepMs: number): number {
    const ms = Math.min(MAX_BACKOFF_MS, Math.max(sleepMs, 1000) * 2 ** Math.min(this.polls, 5));
    this.polls++;
    return ms;
  }
}

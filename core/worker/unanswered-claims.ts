/**
 * Claims the database never answered. A claim is one transaction; when the connection breaks
 * after its COMMIT reached the server but before the answer came back (a server that shuts down
 * or restarts, a connection killed, a client-side statement timeout), the tasks are leased to
 * this worker, which does not know them: they would wait for the whole lease (`lockTimeout`, a
 * minute by default) before another pass recovers them, as a lost attempt.
 *
 * Each claim's token is chosen here, before the claim is sent, so that a claim that failed is
 * still known by its token: once the database answers again, the tasks it took (if it committed)
 * are found by that token and given back, their attempt returned, since they never started. The
 * lease stays the backstop for a claim that commits after that look.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../base/log.js';
import type { Store } from '../store/store.js';

/** Tokens kept at most: a database away for a long time fails claims at each backoff. */
const MAX_KEPT = 64;

export class UnansweredClaims {
  private tokens: string[] = [];

  constructor(
    private readonly store: Store,
    private readonly workerId: string,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.tokens.length;
  }

  /**
   * Runs `claim` with a fresh token; when it fails without an answer (a lost connection, a
   * statement timeout), the token is kept for `giveBack`. An error the database answered with
   * (a deadlock, a missing table, a refused statement) rolled the claim back: nothing to look for.
   * The oldest token is dropped past MAX_KEPT: its lease ends it.
   */
  async track<T>(claim: (token: string) => Promise<T>): Promise<T> {
    const token = randomUUID();
    try {
      return await claim(token);
    } catch (err) {
      // 'connection' covers our statement timeout too (dialect.ts, isConnectionFailure).
      if (this.store.dialect.classifyError(err) === 'connection') {
        this.tokens.push(token);
        if (this.tokens.length > MAX_KEPT) this.tokens.shift();
      }
      throw err;
    }
  }

  /**
   * Gives back what the unanswered claims took, if they committed. A token leaves the list once
   * its look is done; when the database fails the look, the rest stay for the next call (which
   * throws the error for the caller's health guard). Returns how many tasks were given back.
   */
  async giveBack(): Promise<number> {
    let n = 0;
    while (this.tokens.length > 0) {
      const token = this.tokens[0]!;
      const rows = await this.store.claimedWith(this.workerId, token);
      const released = rows.length === 0 ? 0 : await this.store.release(rows);
      this.tokens.shift();
      if (released > 0) {
        this.log.warn('a claim the database did not answer had taken tasks; they are given back, not run, their attempt returned', {
          ids: rows.map((t) => t.id).join(','),
        });
      }
      n += released;
    }
    return n;
  }
}

/**
 * The worker loop's sleep between rounds, which a poke ends early: a slot freed, a stop request,
 * a result written, a notification of a new task (wakeup.ts).
 */
import { setLongTimeout } from '../base/long-timer.js';

export class IdleWait {
  private wake: (() => void) | null = null;
  /** A wake-up that came while the loop was busy (claiming, settling): the next idle ends at once. */
  private wakePending = false;

  /**
   * Ends the idle wait now, or, when the loop is busy (a claim in flight), the next one: a task
   * enqueued while this worker claims must not wait for the next poll.
   */
  poke(): void {
    if (this.wake) this.wake();
    else this.wakePending = true;
  }

  /** Sleeps up to `ms`; `poke()` ends the sleep early. */
  idle(ms: number): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        t.clear();
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const t = setLongTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Sleeps until `cond` holds, looking again at each poke and at least once a second. */
  async until(cond: () => boolean): Promise<void> {
    while (!cond()) await this.idle(1000);
  }
}

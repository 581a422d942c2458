/**
 * How an attempt is stopped: by the worker (cancellation, a lost lease, shutdown) or by its run
 * time limit, with a reason that says which; or asked to stop (the liveness fence), which aborts
 * the task's signal but waits for the function. The task's AbortSignal is made only when the task
 * asks for it (its context): an AbortController per attempt was a measurable cost for the many
 * tasks that never look at one.
 */
export class AttemptControl {
  private controller: AbortController | null = null;
  private reasonValue: unknown = undefined;
  private stopped = false;
  private asked: { reason: unknown } | null = null;
  private listener: ((reason: unknown) => void) | null = null;

  get aborted(): boolean {
    return this.stopped;
  }

  get reason(): unknown {
    return this.reasonValue;
  }

  /** The reason of askToStop(), while the attempt still waits for its function; undefined before. */
  get askedToStop(): { reason: unknown } | null {
    return this.asked;
  }

  /** The signal handed to the task (created on first use, already aborted if the attempt is or was asked to stop). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.stopped) this.controller.abort(this.reasonValue);
      else if (this.asked) this.controller.abort(this.asked.reason);
    }
    return this.controller.signal;
  }

  /**
   * Aborts the task's signal without abandoning the attempt: it ends when the function does. A
   * function that stops (rejects) ends the attempt as this reason says; one that returns anyway
   * ends it with its result, written like any other (fenced by the claim token). A later abort()
   * still stops the attempt at once. The first reason the signal gets wins.
   */
  askToStop(reason: unknown): void {
    if (this.stopped || this.asked) return;
    this.asked = { reason };
    this.controller?.abort(reason);
  }

  /** Stops the attempt; the first reason wins. */
  abort(reason: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.reasonValue = reason;
    this.controller?.abort(reason);
    this.listener?.(reason);
  }

  /** Called once when the attempt is stopped (at once if it already is). Only one listener. */
  onAbort(fn: ((reason: unknown) => void) | null): void {
    this.listener = fn;
    if (fn && this.stopped) fn(this.reasonValue);
  }
}

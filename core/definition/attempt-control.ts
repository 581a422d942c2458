/**
 * How an attempt is stopped: by the worker (cancellation, a lost lease, shutdown) or by its run
 * time limit, with a reason that says which. The task's AbortSignal is made only when the task
 * asks for it (its context): an AbortController per attempt was a measurable cost for the many
 * tasks that never look at one.
 */
export class AttemptControl {
  private controller: AbortController | null = null;
  private reasonValue: unknown = undefined;
  private stopped = false;
  private listener: ((reason: unknown) => void) | null = null;

  get aborted(): boolean {
    return this.stopped;
  }

  get reason(): unknown {
    return this.reasonValue;
  }

  /** The signal handed to the task (created on first use, already aborted if the attempt is). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.stopped) this.controller.abort(this.reasonValue);
    }
    return this.controller.signal;
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

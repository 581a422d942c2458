/**
 * The one start/stop shape of the worker's long-lived helpers (lease keeper, settler,
 * maintenance, wake-up): the worker starts them in order and stops them in reverse, so a helper
 * that another relies on outlives it (river's startstop and oban's plugins are the model).
 */
export interface Service {
  /** Begins its timers or connections; resolves once it is running. */
  start(): void | Promise<void>;
  /** Ends them, waiting for work under way; never throws. */
  stop(): Promise<void>;
}

/**
 * A list of services started in order. An inner list starts together: helpers whose start-up
 * statements do not depend on each other need not wait for each other. Deferred services start
 * only when `startDeferred()` is called (after the worker's first claim: what that claim does not
 * need must not delay it); `stop()` waits for a deferred start under way, then stops everything
 * that started, last first.
 */
export class Services {
  private started: Service[] = [];
  private deferredStart: Promise<void> | null = null;
  private stopping = false;

  constructor(
    private readonly list: ReadonlyArray<Service | readonly Service[]>,
    private readonly deferred: readonly Service[] = [],
    /** Told of a deferred service that failed to start (the worker runs on without it). */
    private readonly onDeferredFailure: (err: unknown) => void = () => {},
  ) {}

  async start(): Promise<void> {
    for (const item of this.list) {
      const group = Array.isArray(item) ? (item as readonly Service[]) : [item as Service];
      const results = await Promise.allSettled(group.map(async (s) => s.start()));
      // Those that started are stopped by stop() (the worker calls it when start() rejects),
      // even when one of their group failed.
      for (let i = 0; i < group.length; i++) if (results[i]!.status === 'fulfilled') this.started.push(group[i]!);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }

  /** Starts the deferred services, once, in order; resolves when they run (never rejects). */
  startDeferred(): Promise<void> {
    this.deferredStart ??= (async () => {
      for (const s of this.deferred) {
        if (this.stopping) return;
        try {
          await s.start();
          this.started.push(s);
        } catch (err) {
          // Nothing the first claim needed: the worker runs on without it, and says so.
          this.onDeferredFailure(err);
        }
      }
    })();
    return this.deferredStart;
  }

  /** Stops what was started, last first. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.deferredStart;
    while (this.started.length > 0) await this.started.pop()!.stop();
  }
}

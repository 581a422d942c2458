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

export class Services {
  private started: Service[] = [];

  constructor(private readonly list: readonly Service[]) {}

  async start(): Promise<void> {
    for (const s of this.list) {
      await s.start();
      this.started.push(s);
    }
  }

  /** Stops what was started, last first. */
  async stop(): Promise<void> {
    while (this.started.length > 0) await this.started.pop()!.stop();
  }
}

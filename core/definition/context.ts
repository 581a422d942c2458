/**
 * The context a task gets when it asks for one (`background({ context: true }, (ctx, …) => …)`).
 */
import type { Logger } from '../base/log.js';

export interface TaskContext {
  /** The task's id. */
  readonly id: string;
  /** This attempt's number (1 on the first run). */
  readonly attempt: number;
  /** Aborts on timeout (maxRunTime), cancellation, a lost lease, worker shutdown, and a worker cut off from the database (its liveness fence). */
  readonly signal: AbortSignal;
  readonly queue: string | null;
  readonly name: string;
  /** Log lines tagged with this task's id and name. */
  readonly log: Logger;
  /**
   * Puts the task back to READY at now + `seconds` and ends this attempt: no attempt is counted,
   * no error recorded (at most the `maxSnoozes` setting times; see docs/flow-control.md#snooze).
   * It throws; code after it does not run.
   */
  snooze(seconds: number): never;
}

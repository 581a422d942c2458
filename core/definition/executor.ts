/**
 * Runs one attempt of one task and says how it ended. It never throws: every failure, including a
 * bad stored argument, a non-JSON return value, a timeout or an abort, becomes an Execution that
 * the settle step records.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { TaskContext } from './context.js';
import { isErrorKind, isPermanent, isSnooze, PermanentTaskError, snooze, TaskTimeoutError, ValidationError } from '../errors.js';
import { plainJson } from '../base/json.js';
import { withFields, type Logger } from '../base/log.js';
import type { Execution } from '../policy/transitions.js';
import type { DefinitionInternals } from './definition.js';
import type { TaskRow } from '../types.js';
import { validateForExecution, type ArgsValidator } from './validate.js';
import type { AttemptControl } from './attempt-control.js';

export interface RunningTaskInfo {
  id: string;
  name: string;
}

/** The task whose code is running now (for --log-std). */
export const runningTask = new AsyncLocalStorage<RunningTaskInfo>();

/** Whether attempts run inside `runningTask` (set while --log-std captures task output). */
export const taskContext = { tracked: false };

export interface ExecuteInput {
  task: TaskRow;
  def: DefinitionInternals;
  /** The attempt's time limit: the controller is aborted with a TaskTimeoutError when it passes. */
  maxRunTimeMs: number;
  /**
   * Stops the attempt; the task's signal comes from it. The worker aborts it too: cancellation,
   * a lost lease, or shutdown (the abort reason says which).
   */
  control: AttemptControl;
  log: Logger;
  /** The largest JSON return value stored (the maxResultBytes setting); larger ones fail the attempt. */
  maxResultBytes?: number;
}

/** The reason an abort carries, mapped to how the attempt ended. */
export function executionOfAbort(reason: unknown): Execution {
  if (isErrorKind(reason, 'TaskTimeoutError')) return { kind: 'timeout', error: reason };
  if (isErrorKind(reason, 'CancelledError')) return { kind: 'cancelled', error: reason };
  if (isErrorKind(reason, 'LeaseLostError')) return { kind: 'lease-lost' };
  if (isErrorKind(reason, 'WorkerStoppedError') && (reason as { release?: boolean }).release) return { kind: 'released' };
  return { kind: 'error', error: reason, permanent: false };
}

function parseArgs(task: TaskRow): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(task.args);
  } catch (err) {
    throw new PermanentTaskError(`Task ${task.name} #${task.id}: its stored arguments are not valid JSON`, { cause: err });
  }
  if (!Array.isArray(parsed)) throw new PermanentTaskError(`Task ${task.name} #${task.id}: its stored arguments are not a JSON array`);
  return parsed;
}

/**
 * Judged here, with the attempt's outcome, rather than when the result is written: the task then
 * fails through the same rules as any other permanent error (events, a repeating task's next run),
 * in the worker and in the inline test modes alike, and the worker never sends the database a
 * value it would refuse or keep in memory a result it will not store.
 */
function checkResultSize(task: TaskRow, json: string, max: number | undefined): void {
  // UTF-8 needs at most 3 bytes per UTF-16 unit: only long texts need the exact count.
  if (max === undefined || json.length * 3 <= max) return;
  const bytes = Buffer.byteLength(json);
  if (bytes <= max) return;
  throw new ValidationError(
    `return value of task ${task.name} #${task.id} is ${bytes} bytes of JSON — expected at most ${max} (the maxResultBytes setting); store large data elsewhere and return its id`,
  );
}

export async function execute(input: ExecuteInput): Promise<Execution> {
  const { task, def, control } = input;
  if (control.aborted) return executionOfAbort(control.reason);
  // One control per attempt: the worker stops it (cancel, lost lease, shutdown) and so does this
  // timer; its reason says which.
  const timer = setTimeout(() => {
    control.abort(new TaskTimeoutError(`Task ${task.name} #${task.id} ran longer than its maxRunTime of ${input.maxRunTimeMs / 1000} s`));
  }, Math.min(input.maxRunTimeMs, 2 ** 31 - 1));
  // One promise settled by whichever comes first, the task's end or an abort. Promise.race over
  // two promises (its iterator, arrays and reactions) was about 6 % of what a no-op attempt
  // allocated in a sampling heap profile of a busy worker.
  let finish!: (e: Execution) => void;
  const outcome = new Promise<Execution>((resolve) => (finish = resolve));
  control.onAbort((reason) => finish(executionOfAbort(reason)));
  try {
    const args = parseArgs(task);
    const run = async (): Promise<Execution> => {
      await validateForExecution(task.name, task.id, def.options.validate as ArgsValidator | undefined, args);
      let value: unknown;
      if (def.takesContext) {
        const ctx: TaskContext = {
          id: task.id,
          attempt: task.attempts,
          signal: control.signal,
          queue: task.queue,
          name: task.name,
          log: withFields(input.log, { id: task.id, name: task.name }),
          snooze: (seconds: number): never => {
            throw snooze(seconds);
          },
        };
        value = await def.fn(ctx, ...args);
      } else {
        value = await def.fn(...args);
      }
      if (value === undefined) return { kind: 'success', returnJson: null };
      if (isSnooze(value)) return { kind: 'snoozed', seconds: value.seconds };
      try {
        const returnJson = plainJson(value, `return value of task ${task.name} #${task.id}`);
        checkResultSize(task, returnJson, input.maxResultBytes);
        return { kind: 'success', returnJson };
      } catch (err) {
        // Not retried: a second run would repeat the task's side effects and fail the same way.
        return { kind: 'error', error: err, permanent: true };
      }
    };
    // The task's context (for --log-std) only when output is captured: an active
    // AsyncLocalStorage makes every promise in the process more expensive.
    const started = taskContext.tracked ? runningTask.run({ id: task.id, name: task.name }, run) : run();
    // A task that ignores its signal is abandoned here; its late result is discarded. One that was
    // only asked to stop is waited for: if it stops (rejects), the attempt ends as the request says.
    started.then(finish, (err: unknown) => {
      if (isSnooze(err)) return finish({ kind: 'snoozed', seconds: err.seconds });
      if (control.askedToStop) return finish(executionOfAbort(control.askedToStop.reason));
      let permanent = false;
      try {
        permanent = isPermanent(err);
      } catch {
        // A thrown value that cannot even be inspected (a revoked Proxy): an ordinary failure.
      }
      finish({ kind: 'error', error: err, permanent });
    });
    return await outcome;
  } catch (err) {
    return { kind: 'error', error: err, permanent: isPermanent(err) };
  } finally {
    clearTimeout(timer);
    control.onAbort(null);
  }
}

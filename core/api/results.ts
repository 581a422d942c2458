/**
 * Results: what a task is and did, found by its id in the pending table or, once it finished, in
 * the completed table (or in the test modes' memory store).
 */
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import { ValidationError, WaitTimeoutError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { TaskRef } from '../types.js';
import { databaseBackend, openBackend, type Backend } from './backend.js';
import { checkTaskId, HANDLE_CONNECTION, type TaskHandle, type TaskResult } from './handle.js';
import { resultOf } from './task-result.js';

/** Reads a task from a backend; a TaskNotFoundError names where it looked. */
export async function resultIn<R = unknown>(backend: Backend, id: string): Promise<TaskResult<R>> {
  // The completed row is written in the same transaction that deletes the pending one, so
  // reading pending first can miss a task only if it finished in between: read completed then.
  const found = await backend.find(id);
  if (!found) throw backend.notFound(id);
  return resultOf<R>(found, currentClock().now(), () => resultIn<R>(backend, id));
}

/** Reads a task from a store: pending first, then completed. */
export function readResult<R = unknown>(store: Store, id: string): Promise<TaskResult<R>> {
  return resultIn<R>(databaseBackend(store), id);
}

/** The result of the task with this id (a TaskRef or its id). */
export async function getResult<R = unknown>(
  idOrRef: TaskHandle<R> | string | number | Pick<TaskRef, 'id'>,
  options: { connection?: string } = {},
): Promise<TaskResult<R>> {
  const id = checkTaskId(typeof idOrRef === 'object' && idOrRef !== null ? idOrRef.id : idOrRef);
  // A handle knows the connection that holds its task.
  const connection = options.connection ?? (idOrRef as { [HANDLE_CONNECTION]?: string } | null)?.[HANDLE_CONNECTION];
  return resultIn<R>(await openBackend(await getSettings(), connection), id);
}

/**
 * Polls until the task has finished (SUCCESSFUL or FAILED); for scripts and tests. `timeout` and
 * `interval` are seconds (DECISIONS.md: user-facing durations are seconds); `timeoutMs` and
 * `intervalMs` are accepted too.
 */
export async function waitFor<R = unknown>(
  idOrRef: TaskHandle<R> | string | number | Pick<TaskRef, 'id'>,
  options: { timeout?: number; interval?: number; timeoutMs?: number; intervalMs?: number; connection?: string } = {},
): Promise<TaskResult<R>> {
  const timeoutMs = options.timeoutMs ?? (options.timeout ?? 30) * 1000;
  const intervalMs = options.intervalMs ?? (options.interval ?? 0.1) * 1000;
  if (!(timeoutMs > 0) || !(intervalMs > 0) || !Number.isFinite(timeoutMs) || !Number.isFinite(intervalMs)) {
    throw new ValidationError('waitFor: timeout and interval must be finite numbers of seconds > 0');
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await getResult<R>(idOrRef, options);
    if (r.isFinished) return r;
    if (Date.now() + intervalMs > deadline) {
      throw new WaitTimeoutError(`Task ${r.name} #${r.id} had not finished after ${timeoutMs / 1000} s (status ${r.status})`);
    }
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}

/**
 * Results: what a task is and did, found by its id in the pending table or, once it finished, in
 * the completed table (or in the test modes' memory store).
 */
import { describeValue } from '../config/settings-spec.js';
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import { ValidationError, WaitTimeoutError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { TaskRef } from '../types.js';
import { checkConnectionOptions, databaseBackend, openBackend, type Backend } from './backend.js';
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
  checkConnectionOptions(options, 'getResult() options');
  // A handle knows the connection that holds its task.
  const connection = options.connection ?? (idOrRef as { [HANDLE_CONNECTION]?: string } | null)?.[HANDLE_CONNECTION];
  return resultIn<R>(await openBackend(await getSettings(), connection), id);
}

const WAIT_OPTIONS = ['timeout', 'interval', 'timeoutMs', 'intervalMs', 'connection'];

/**
 * waitFor()'s options: a misspelt key would wait the default 30 s, and a string such as '0.5'
 * would pass the arithmetic below as a number.
 */
function checkWaitOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError(`Invalid waitFor() options: ${describeValue(options)} — expected an object such as { timeout: 60 }`);
  }
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!WAIT_OPTIONS.includes(key)) throw new ValidationError(`Unknown option "${key}" in waitFor() options — expected one of: ${WAIT_OPTIONS.join(', ')}`);
    if (key === 'connection') continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      const unit = key.endsWith('Ms') ? 'milliseconds' : 'seconds';
      throw new ValidationError(`Invalid ${key} in waitFor() options: ${typeof value === 'string' ? JSON.stringify(value) : String(value)} — expected a finite number of ${unit} > 0`);
    }
  }
  checkConnectionOptions({ connection: (options as { connection?: unknown }).connection }, 'waitFor() options');
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
  checkWaitOptions(options);
  const timeoutMs = options.timeoutMs ?? (options.timeout ?? 30) * 1000;
  const intervalMs = options.intervalMs ?? (options.interval ?? 0.1) * 1000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await getResult<R>(idOrRef, { connection: options.connection });
    if (r.isFinished) return r;
    if (Date.now() + intervalMs > deadline) {
      throw new WaitTimeoutError(`Task ${r.name} #${r.id} had not finished after ${timeoutMs / 1000} s (status ${r.status})`);
    }
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}

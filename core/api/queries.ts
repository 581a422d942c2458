/**
 * Finding tasks: by state, queue, name, creator and finish time. Serves the API (the reference's
 * `created_by`, `failed(within)`, `succeeded(within)`) and `bgtasks list`; the query itself is
 * store/find.ts (or the memory store's filter in the test modes).
 */
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import type { TaskFilter } from '../store/find.js';
import type { Store } from '../store/store.js';
import type { Creator } from '../types.js';
import { databaseBackend, openBackend, type Backend } from './backend.js';
import type { TaskResult } from './handle.js';
import { resultIn } from './results.js';
import { resultOfCompleted, resultOfPending } from './task-result.js';

export type { TaskFilter };

/** Tasks matching `filter` in a backend: pending ones first (by run time), then finished ones (newest first). */
export async function listIn(backend: Backend, filter: TaskFilter): Promise<TaskResult[]> {
  const now = currentClock().now();
  const found = await backend.findTasks(filter, now);
  const reload = (id: string) => () => resultIn(backend, id);
  return [...found.pending.map((t) => resultOfPending(t, now, reload(t.id))), ...found.completed.map((c) => resultOfCompleted(c, reload(c.taskId)))];
}

/** Tasks matching `filter` in a store (`bgtasks list`). */
export function findTasks(store: Store, filter: TaskFilter): Promise<TaskResult[]> {
  return listIn(databaseBackend(store), filter);
}

/** Tasks matching `filter` in the configured database (or a named connection, or the test mode's memory). */
export async function listTasks(filter: TaskFilter = {}, options: { connection?: string } = {}): Promise<TaskResult[]> {
  return listIn(await openBackend(await getSettings(), options.connection), filter);
}

type Connection = { connection?: string };

/** Pending and finished tasks scheduled by `creator` (the reference's `created_by`). */
export function createdBy(creator: Creator, filter: Omit<TaskFilter, 'creator'> & Connection = {}): Promise<TaskResult[]> {
  const { connection, ...f } = filter;
  return listTasks({ ...f, creator }, { connection });
}

/** Tasks that failed for good, optionally only within the last `within` seconds. */
export function failedTasks(within?: number, filter: Omit<TaskFilter, 'state' | 'finishedWithin'> & Connection = {}): Promise<TaskResult[]> {
  const { connection, ...f } = filter;
  return listTasks({ ...f, state: 'FAILED', finishedWithin: within }, { connection });
}

/** Tasks that succeeded, optionally only within the last `within` seconds. */
export function succeededTasks(within?: number, filter: Omit<TaskFilter, 'state' | 'finishedWithin'> & Connection = {}): Promise<TaskResult[]> {
  const { connection, ...f } = filter;
  return listTasks({ ...f, state: 'SUCCESSFUL', finishedWithin: within }, { connection });
}

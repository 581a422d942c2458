/**
 * Finding tasks: by state, queue, name, creator and finish time. Serves the API (the reference's
 * `created_by`, `failed(within)`, `succeeded(within)`) and `bgtasks list`; the query itself is
 * store/find.ts (or the memory store's filter in the test modes).
 */
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import { checkCreator, checkFilter, checkFinishedWithin, FILTER_FIELDS, type TaskFilter } from '../store/find.js';
import type { Store } from '../store/store.js';
import type { Creator } from '../types.js';
import { checkConnectionOptions, databaseBackend, openBackend, type Backend } from './backend.js';
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
  checkFilter(filter, 'listTasks() filter');
  checkConnectionOptions(options, 'listTasks() options');
  return listIn(await openBackend(await getSettings(), options.connection), filter);
}

type Connection = { connection?: string };

/**
 * A shortcut's filter, checked before it adds its own fields: a field it sets itself (`creator`,
 * or `state` and `finishedWithin`) is refused rather than silently overwritten.
 */
function shortcutFilter<F extends Connection>(filter: F, where: string, own: readonly string[]): { f: Omit<F, 'connection'>; connection: string | undefined } {
  checkFilter(filter as TaskFilter, where, [...FILTER_FIELDS.filter((k) => !own.includes(k)), 'connection']);
  const { connection, ...f } = filter;
  checkConnectionOptions({ connection }, where);
  return { f, connection };
}

/** Pending and finished tasks scheduled by `creator` (the reference's `created_by`). */
export async function createdBy(creator: Creator, filter: Omit<TaskFilter, 'creator'> & Connection = {}): Promise<TaskResult[]> {
  // Checked here, so the error names createdBy: an absent creator would list every task.
  checkCreator(creator, 'createdBy(creator)');
  const { f, connection } = shortcutFilter(filter, 'createdBy() filter', ['creator']);
  return listTasks({ ...f, creator }, { connection });
}

/** Tasks that failed for good, optionally only within the last `within` seconds. */
export async function failedTasks(within?: number, filter: Omit<TaskFilter, 'state' | 'finishedWithin'> & Connection = {}): Promise<TaskResult[]> {
  if (within !== undefined) checkFinishedWithin(within, 'failedTasks(within)');
  const { f, connection } = shortcutFilter(filter, 'failedTasks() filter', ['state', 'finishedWithin']);
  return listTasks({ ...f, state: 'FAILED', finishedWithin: within }, { connection });
}

/** Tasks that succeeded, optionally only within the last `within` seconds. */
export async function succeededTasks(within?: number, filter: Omit<TaskFilter, 'state' | 'finishedWithin'> & Connection = {}): Promise<TaskResult[]> {
  if (within !== undefined) checkFinishedWithin(within, 'succeededTasks(within)');
  const { f, connection } = shortcutFilter(filter, 'succeededTasks() filter', ['state', 'finishedWithin']);
  return listTasks({ ...f, state: 'SUCCESSFUL', finishedWithin: within }, { connection });
}

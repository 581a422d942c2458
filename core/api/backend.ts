/**
 * Where the client side keeps tasks, chosen once when the target is opened: the database (the
 * `normal` mode), or the memory store of the `immediate` and `dummy` test modes. Enqueue, bulk,
 * results, `listTasks` and `cancel` call the same methods whatever the mode (oban's inline
 * engine is the model: a test mode is a backend, not a branch in every function).
 */
import { describeValue } from '../config/settings-spec.js';
import type { Settings } from '../config/settings.js';
import { ValidationError, type TaskNotFoundError } from '../errors.js';
import { cancelTask, type CancelOutcome } from '../store/cancel.js';
import type { UniformRows } from '../store/dialects/insert-rows.js';
import { insertCall, insertCalls, insertKeyedCalls, type EnqueuePlan, type StoredCall } from '../store/enqueue.js';
import { findTasks, type FoundTasks, type TaskFilter } from '../store/find.js';
import { notFound } from '../store/admin.js';
import { storeFor } from '../store/open.js';
import { runTaskNow, type RunNowResult } from '../store/run-now.js';
import type { NewTask } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { CompletedRow, TaskRow } from '../types.js';
import { enqueueError } from './enqueue-errors.js';
import { MemoryStore } from './memory-store.js';

/** Many calls of one definition: rows built from one template, each with its arguments and hash. */
export interface BulkCalls {
  template: Omit<NewTask, 'args' | 'hash'>;
  rows: UniformRows;
  argsAt: number;
  hashAt: number;
  /** -1 when the calls share the template's key. */
  keyAt: number;
  /** Where each row holds its idempotency key; -1 when the bulk has none. */
  idempotencyAt: number;
}

/** A task found by id: in the pending table, or finished (exactly one is set). */
export interface FoundTask {
  pending: TaskRow | null;
  completed: CompletedRow | null;
}

export interface Backend {
  /** Whether enqueues here are announced on `events`: the test modes emit none (docs/testing.md). */
  readonly emitsEvents: boolean;
  /** Stores one call following its dedupe plan. */
  insertCall(task: NewTask, plan: EnqueuePlan, nowMs: number): Promise<StoredCall>;
  /** Stores many calls in one go; what became of each, in order. */
  insertCalls(calls: BulkCalls, plan: Pick<EnqueuePlan, 'queueLimit' | 'db'>, nowMs: number): Promise<StoredCall[]>;
  /** One task by id (pending first: one finishing in between is then found finished). */
  find(id: string): Promise<FoundTask | null>;
  findTasks(filter: TaskFilter, nowMs: number): Promise<FoundTasks>;
  cancel(id: string): Promise<CancelOutcome>;
  /** A READY task due later becomes due now (store/run-now.ts). */
  runNow(id: string, nowMs: number): Promise<RunNowResult>;
  /** The error for an id this backend does not hold. */
  notFound(id: string): TaskNotFoundError;
}

/** The database behind a store: every method one of store/'s verbs. */
export function databaseBackend(store: Store): Backend {
  return {
    emitsEvents: true,
    insertCall: (task, plan, nowMs) => insertCall(store, task, plan, nowMs).catch((err: unknown) => Promise.reject(enqueueError(store, task.name, err))),
    insertCalls: (calls, plan, nowMs) => {
      const { rows, template } = calls;
      const stored =
        calls.idempotencyAt < 0
          ? insertCalls(store, rows, template.queue, plan, nowMs).then((ids) => ids.map((id): StoredCall => ({ id, runAt: template.runAt, outcome: 'created' })))
          : insertKeyedCalls(store, rows, template.queue, plan, nowMs, { name: template.name, keyAt: calls.idempotencyAt, hashAt: calls.hashAt });
      return stored.catch((err: unknown) => Promise.reject(enqueueError(store, `${rows.values.length} calls of ${template.name}`, err)));
    },
    async find(id) {
      const pending = await store.findPending(id);
      if (pending) return { pending, completed: null };
      const completed = await store.findCompleted(id);
      return completed ? { pending: null, completed } : null;
    },
    findTasks: (filter, nowMs) => findTasks(store, filter, nowMs),
    cancel: (id) => cancelTask(store, id),
    runNow: (id, nowMs) => runTaskNow(store, id, nowMs),
    notFound: (id) => notFound(store, id),
  };
}

/**
 * The `{ connection }` options of a read or an operator action, checked: a misspelt key would
 * otherwise read the main database in silence.
 */
export function checkConnectionOptions(options: unknown, where: string): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError(`Invalid ${where}: ${describeValue(options)} — expected an object such as { connection: 'reports' }`);
  }
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (key !== 'connection') throw new ValidationError(`Unknown option "${key}" in ${where} — expected: connection`);
    if (typeof value !== 'string') {
      throw new ValidationError(`Invalid connection in ${where}: ${JSON.stringify(value) ?? String(value)} — expected the name of a configured connection`);
    }
  }
}

/** The backend of the configured mode (and, for the database, of a named connection). */
export async function openBackend(settings: Settings, connection?: string | null): Promise<Backend> {
  if (settings.mode !== 'normal') return new MemoryStore(settings.mode, settings);
  return databaseBackend(await storeFor(settings, connection));
}

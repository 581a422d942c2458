/**
 * Test modes for applications' own unit tests (the `mode` setting, or BGTASKS_MODE):
 * - `immediate`: enqueue runs the task inline through the same executor, after a JSON round trip
 *   of the arguments, and returns a handle whose result is already final (one attempt, no retry);
 * - `dummy`: enqueue only records the call in memory; `dummy.list()`, `dummy.clear()` and
 *   `dummy.runAll()` inspect and drain them.
 * Nothing touches a database in either mode.
 */
import { currentClock } from '../base/clock.js';
import type { Settings } from '../config/settings.js';
import type { TaskHandle } from './enqueue.js';
import { errorRecord } from '../errors.js';
import { execute } from '../definition/executor.js';
import { AttemptControl } from '../definition/attempt-control.js';
import { processWide } from '../base/global.js';
import { getLogger } from '../base/log.js';
import { getRegistered } from '../definition/registry.js';
import { resultOfCompleted, resultOfPending, type TaskResult } from './results.js';
import type { NewTask } from '../store/rows.js';
import type { DefinitionInternals } from '../definition/definition.js';
import type { CompletedRow, TaskRow } from '../types.js';

interface MemoryTask {
  row: TaskRow;
  done: CompletedRow | null;
}

const memory = processWide('memoryTasks', () => ({ nextId: 1, tasks: new Map<string, MemoryTask>(), settings: null as Settings | null }));

function rowOf(id: string, t: NewTask): TaskRow {
  return {
    ...t,
    id,
    // The round trip the database would impose: what the task sees is what JSON can carry.
    args: JSON.stringify(JSON.parse(t.args)),
    attempts: 0,
    lastError: null,
    errors: [],
    lockedBy: null,
    claimToken: null,
    lockedAt: null,
    lockedUntil: null,
    cancelRequested: false,
  };
}

function memoryResult(id: string): TaskResult | null {
  const m = memory.tasks.get(id);
  if (!m) return null;
  const reload = async () => memoryResult(id)!;
  return m.done ? resultOfCompleted(m.done, reload) : resultOfPending(m.row, currentClock().now(), reload);
}

/** The in-memory task with this id, if a test mode recorded one. */
export function findMemoryResult(id: string): TaskResult | null {
  return memory.tasks.size === 0 ? null : memoryResult(id);
}

async function runInMemory(m: MemoryTask): Promise<void> {
  const def = getRegistered(m.row.name);
  const settings = memory.settings;
  const now = currentClock().now();
  const task: TaskRow = { ...m.row, attempts: m.row.attempts + 1, lockedBy: 'inline', lockedAt: now };
  const maxRunTime = task.maxRunTime ?? def?.options.maxRunTime ?? settings?.maxRunTime ?? 3600;
  const execution = def
    ? await execute({ task, def, maxRunTimeMs: Math.round(maxRunTime * 1000), control: new AttemptControl(), log: getLogger() })
    : ({ kind: 'error', error: new Error(`no task named ${task.name} is registered`), permanent: true } as const);
  const finishedAt = currentClock().now();
  const ok = execution.kind === 'success';
  const errors =
    ok || !('error' in execution) ? task.errors : [...task.errors, errorRecord(execution.error, task.attempts, finishedAt, 'inline')];
  m.done = {
    taskId: task.id,
    name: task.name,
    args: task.args,
    hash: task.hash,
    queue: task.queue,
    priority: task.priority,
    verboseName: task.verboseName,
    creatorType: task.creatorType,
    creatorId: task.creatorId,
    runAt: task.runAt,
    scheduledAt: task.scheduledAt,
    enqueuedAt: task.enqueuedAt,
    startedAt: now,
    finishedAt,
    failedAt: ok ? null : finishedAt,
    attempts: task.attempts,
    lastError: errors.length ? errors[errors.length - 1]!.stack : null,
    errors,
    returnValue: ok ? execution.returnJson : null,
    workerId: 'inline',
    repeatEvery: task.repeatEvery,
    repeatCron: task.repeatCron,
    timezone: task.timezone,
    repeatUntil: task.repeatUntil,
    recurringKey: task.recurringKey,
  };
}

export async function enqueueInMemory(mode: 'immediate' | 'dummy', _def: DefinitionInternals, t: NewTask, settings: Settings): Promise<TaskHandle> {
  memory.settings = settings;
  const id = String(memory.nextId++);
  const m: MemoryTask = { row: rowOf(id, t), done: null };
  memory.tasks.set(id, m);
  if (mode === 'immediate') await runInMemory(m);
  const ref = { id, name: t.name, queue: t.queue, runAt: new Date(t.runAt), outcome: 'created' as const };
  Object.defineProperty(ref, 'refresh', { value: async () => memoryResult(id)!, enumerable: false });
  return ref as TaskHandle;
}

/** The `dummy` mode's recorded tasks. */
export const dummy = {
  /** Every task recorded (and not cleared), in enqueue order, as results (READY until run). */
  list(): TaskResult[] {
    return [...memory.tasks.keys()].map((id) => memoryResult(id)!);
  },
  /** Forgets every recorded task. */
  clear(): void {
    memory.tasks.clear();
  },
  /** Runs every recorded task that has not run yet, in enqueue order; returns their results. */
  async runAll(): Promise<TaskResult[]> {
    const out: TaskResult[] = [];
    for (const [id, m] of memory.tasks) {
      if (m.done) continue;
      await runInMemory(m);
      out.push(memoryResult(id)!);
    }
    return out;
  },
};

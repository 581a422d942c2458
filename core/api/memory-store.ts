/**
 * The memory store of the test modes, the backend chosen when the `mode` setting is not `normal`:
 * - `immediate`: each enqueue runs the task at once, in this process, through the same executor
 *   as the worker (validation and JSON round trip of the arguments included), and its result is
 *   already final (one attempt, no retry);
 * - `dummy`: enqueue only records the call; `dummy.list()`, `dummy.clear()` and `dummy.runAll()`
 *   inspect and drain them.
 * Results, `listTasks` and `cancel` read and change the same records. Nothing touches a database.
 */
import { currentClock } from '../base/clock.js';
import type { RunNowResult } from '../store/run-now.js';
import { processWide } from '../base/global.js';
import { getLogger } from '../base/log.js';
import type { Settings } from '../config/settings.js';
import { AttemptControl } from '../definition/attempt-control.js';
import { execute } from '../definition/executor.js';
import { getRegistered } from '../definition/registry.js';
import { errorRecord, TaskNotFoundError, ValidationError } from '../errors.js';
import { hasLiveLease } from '../policy/status.js';
import { attemptsRecorded, decide, decideCancelledWhileReady, type Execution } from '../policy/transitions.js';
import { asList, checkFilter, type FoundTasks, type TaskFilter } from '../store/find.js';
import { taskWithArgs, type NewTask } from '../store/rows.js';
import type { CompletedRow, StoredTask, TaskRow } from '../types.js';
import type { EnqueuePlan, StoredCall } from '../store/enqueue.js';
import { checkSameCall } from '../policy/idempotency.js';
import type { TaskResult } from './handle.js';
import { resultOfCompleted, resultOfPending } from './task-result.js';

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
    snoozes: 0,
    lastError: null,
    errors: [],
    lockedBy: null,
    claimToken: null,
    lockedAt: null,
    lockedUntil: null,
    cancelRequested: false,
  };
}

/** The completed record of a memory task, as the completed table would hold it. */
function finished(task: TaskRow, f: Pick<CompletedRow, 'startedAt' | 'finishedAt' | 'failedAt' | 'returnValue' | 'workerId' | 'attempts' | 'errors'>): CompletedRow {
  const stored: StoredTask = {
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
    attempts: f.attempts,
    repeatEvery: task.repeatEvery,
    repeatCron: task.repeatCron,
    timezone: task.timezone,
    repeatUntil: task.repeatUntil,
    recurringKey: task.recurringKey,
    concurrencyKey: task.concurrencyKey,
    snoozes: task.snoozes,
    lastError: f.errors.length ? f.errors[f.errors.length - 1]!.stack : null,
    errors: f.errors,
    traceContext: task.traceContext,
    idempotencyKey: task.idempotencyKey,
  };
  return { ...stored, taskId: task.id, startedAt: f.startedAt, finishedAt: f.finishedAt, failedAt: f.failedAt, returnValue: f.returnValue, workerId: f.workerId };
}

async function runInMemory(m: MemoryTask): Promise<void> {
  const def = getRegistered(m.row.name);
  const settings = memory.settings;
  const now = currentClock().now();
  const task: TaskRow = { ...m.row, attempts: m.row.attempts + 1, lockedBy: 'inline', lockedAt: now };
  const maxRunTime = task.maxRunTime ?? def?.options.maxRunTime ?? settings?.maxRunTime ?? 3600;
  let execution: Execution = def
    ? await execute({ task, def, maxRunTimeMs: Math.round(maxRunTime * 1000), control: new AttemptControl(), log: getLogger(), maxResultBytes: settings?.maxResultBytes })
    : ({ kind: 'error', error: new Error(`no task named ${task.name} is registered`), permanent: true } as const);
  const finishedAt = currentClock().now();
  if (execution.kind === 'snoozed') {
    // The memory store's snooze: READY again at its new time, attempt not counted; a test runs it
    // again with dummy.runAll() (time is the test's to move). maxSnoozes bounds it as a worker's
    // decision does.
    const d = decide(
      { attempts: m.row.attempts, snoozes: m.row.snoozes, scheduledAt: task.scheduledAt, recurrence: { everyMs: 0, cron: null, timezone: null, untilMs: null }, repeatOnFailure: false },
      execution,
      { nowMs: finishedAt, maxAttempts: Infinity, maxSnoozes: settings?.maxSnoozes ?? 100 },
    );
    if (d.type === 'snooze') {
      m.row = { ...m.row, runAt: d.runAt, snoozes: m.row.snoozes + 1 };
      return;
    }
    execution = { kind: 'error', error: d.type === 'fail' ? d.error : new Error('unexpected snooze decision'), permanent: true };
  }
  const ok = execution.kind === 'success';
  const errors =
    ok || !('error' in execution) ? task.errors : [...task.errors, errorRecord(execution.error, task.attempts, finishedAt, 'inline')];
  m.done = finished(task, {
    startedAt: now,
    finishedAt,
    failedAt: ok ? null : finishedAt,
    returnValue: execution.kind === 'success' ? execution.returnJson : null,
    workerId: 'inline',
    attempts: task.attempts,
    errors,
  });
}

function matches(t: StoredTask, f: TaskFilter): boolean {
  const queues = asList(f.queue);
  if (queues && !queues.includes(t.queue)) return false;
  const names = asList(f.name);
  if (names && !names.includes(t.name)) return false;
  if (f.creator && (t.creatorType !== f.creator.type || t.creatorId !== String(f.creator.id))) return false;
  return true;
}

/** A test mode's backend (see api/backend.ts): the same methods as the database's, over memory. */
export class MemoryStore {
  // The test modes emit no events (docs/testing.md): their runs emit none of the worker's, and a
  // lone `task:created` would only mislead a listener.
  readonly emitsEvents = false;

  constructor(
    private readonly mode: 'immediate' | 'dummy',
    settings: Settings,
  ) {
    memory.settings = settings;
  }

  /**
   * The recorded task that holds `t`'s idempotency key, as the database's look-up finds it: a
   * record is kept until dummy.clear(), as a result is until it is pruned.
   */
  private keyHolder(t: NewTask): StoredCall | null {
    const key = t.idempotencyKey;
    if (key === null) return null;
    for (const m of memory.tasks.values()) {
      if (m.row.idempotencyKey !== key) continue;
      checkSameCall(key, m.row, t);
      return { id: m.row.id, runAt: m.row.runAt, outcome: 'existing' };
    }
    return null;
  }

  private async insert(t: NewTask): Promise<string> {
    const id = String(memory.nextId++);
    const m: MemoryTask = { row: rowOf(id, t), done: null };
    memory.tasks.set(id, m);
    if (this.mode === 'immediate') await runInMemory(m);
    return id;
  }

  // Dedupe actions and queue limits guard a shared table; a test's memory has no twins to race.
  // Idempotency keys are the application's own retry logic, so they behave as in the database.
  async insertCall(task: NewTask, _plan: EnqueuePlan): Promise<StoredCall> {
    return this.keyHolder(task) ?? { id: await this.insert(task), runAt: task.runAt, outcome: 'created' };
  }

  async insertCalls(calls: {
    template: Omit<NewTask, 'args' | 'hash'>;
    rows: { values: unknown[][] };
    argsAt: number;
    hashAt: number;
    keyAt: number;
    idempotencyAt: number;
  }): Promise<StoredCall[]> {
    // As in the database, the bulk is all or nothing: every key is checked before anything is recorded.
    const tasks = calls.rows.values.map((row) => {
      const t = taskWithArgs(calls.template, row[calls.argsAt] as string, row[calls.hashAt] as string, calls.keyAt < 0 ? calls.template.concurrencyKey : (row[calls.keyAt] as string));
      if (calls.idempotencyAt >= 0) t.idempotencyKey = row[calls.idempotencyAt] as string;
      return t;
    });
    const firstAt = new Map<string, number>();
    tasks.forEach((t, i) => {
      this.keyHolder(t);
      const earlier = t.idempotencyKey === null ? undefined : firstAt.get(t.idempotencyKey);
      if (earlier !== undefined) checkSameCall(t.idempotencyKey!, { id: `call ${earlier + 1} of this bulk`, name: tasks[earlier]!.name, hash: tasks[earlier]!.hash }, t);
      else if (t.idempotencyKey !== null) firstAt.set(t.idempotencyKey, i);
    });
    const out: StoredCall[] = [];
    for (const t of tasks) out.push(this.keyHolder(t) ?? { id: await this.insert(t), runAt: t.runAt, outcome: 'created' });
    return out;
  }

  async find(id: string): Promise<{ pending: TaskRow | null; completed: CompletedRow | null } | null> {
    const m = memory.tasks.get(id);
    if (!m) return null;
    return m.done ? { pending: null, completed: m.done } : { pending: m.row, completed: null };
  }

  async findTasks(f: TaskFilter, nowMs: number): Promise<FoundTasks> {
    const { states, limit } = checkFilter(f);
    const all = [...memory.tasks.values()];
    const pending =
      f.finishedWithin !== undefined
        ? []
        : all
            .filter((m) => !m.done && matches(m.row, f) && states.includes(hasLiveLease(m.row, nowMs) ? 'RUNNING' : 'READY'))
            .map((m) => m.row)
            .sort((a, b) => a.runAt - b.runAt || Number(a.id) - Number(b.id))
            .slice(0, limit);
    const since = f.finishedWithin === undefined ? -Infinity : nowMs - f.finishedWithin * 1000;
    const completed = all
      .flatMap((m) => (m.done ? [m.done] : []))
      .filter((c) => matches(c, f) && states.includes(c.failedAt === null ? 'SUCCESSFUL' : 'FAILED') && c.finishedAt > since)
      .sort((a, b) => b.finishedAt - a.finishedAt || Number(b.taskId) - Number(a.taskId))
      .slice(0, limit - pending.length);
    return { pending, completed };
  }

  /** A recorded task that has not run yet is cancelled at once: FAILED with a CancelledError. */
  async cancel(id: string): Promise<{ id: string; status: 'FAILED' | 'RUNNING' }> {
    const m = memory.tasks.get(id);
    if (!m) throw this.notFound(id);
    if (m.done) {
      throw new ValidationError(`Task ${m.done.name} #${id} has already finished (${m.done.failedAt === null ? 'SUCCESSFUL' : 'FAILED'}); nothing to cancel`);
    }
    const now = currentClock().now();
    const d = decideCancelledWhileReady(m.row);
    const attempts = attemptsRecorded(d, m.row.attempts);
    const errors = [...m.row.errors, errorRecord(d.error, attempts, now, null)];
    m.done = finished(m.row, { startedAt: null, finishedAt: now, failedAt: now, returnValue: null, workerId: null, attempts, errors });
    return { id, status: 'FAILED' };
  }

  /** As store/run-now.ts: a recorded READY task due later becomes due now. */
  async runNow(id: string, nowMs: number): Promise<RunNowResult> {
    const m = memory.tasks.get(id);
    if (!m) return { id, name: null, outcome: 'notFound', status: null, runAt: null };
    if (m.done) return { id, name: m.done.name, outcome: 'notReady', status: m.done.failedAt === null ? 'SUCCESSFUL' : 'FAILED', runAt: null };
    if (m.row.runAt <= nowMs) return { id, name: m.row.name, outcome: 'alreadyDue', status: 'READY', runAt: m.row.runAt };
    m.row.runAt = nowMs;
    return { id, name: m.row.name, outcome: 'movedToNow', status: 'READY', runAt: nowMs };
  }

  notFound(id: string): TaskNotFoundError {
    return new TaskNotFoundError(`No task with id ${id} was recorded in ${this.mode} mode`);
  }
}

function memoryResult(id: string): TaskResult {
  const m = memory.tasks.get(id)!;
  const reload = async () => memoryResult(id);
  return m.done ? resultOfCompleted(m.done, reload) : resultOfPending(m.row, currentClock().now(), reload);
}

/** The `dummy` mode's recorded tasks. */
export const dummy = {
  /** Every task recorded (and not cleared), in enqueue order, as results (READY until run). */
  list(): TaskResult[] {
    return [...memory.tasks.keys()].map((id) => memoryResult(id));
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
      out.push(memoryResult(id));
    }
    return out;
  },
};

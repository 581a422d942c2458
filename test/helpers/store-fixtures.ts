/**
 * Builders for the store conformance suite (test/contract/store/): new task rows, claim requests,
 * error records and row counts. Every time is explicit (the store takes `nowMs` as an argument),
 * so no test waits for a real clock.
 */
import { taskHash } from '../../core/base/json.js';
import { plainTask, type NewTask } from '../../core/store/rows.js';
import type { ClaimRequest, Completion } from '../../core/store/store.js';
import type { CompletedRow, ErrorRecord, TaskRow } from '../../core/types.js';
import type { TestDatabase } from './databases.js';

/** The suite's "now": a time with milliseconds, so a lost millisecond shows. */
export const T0 = Date.UTC(2031, 2, 3, 4, 5, 6, 789);
export const JOB = 'store.job';
export const OTHER = 'store.other';
export const LEASE_MS = 30_000;

let seq = 0;

/** A new task (default: `store.job`, due at T0, arguments unique to this call). */
export function newTask(extra: Partial<NewTask> = {}): NewTask {
  const name = extra.name ?? JOB;
  const args = extra.args ?? JSON.stringify([++seq]);
  const runAt = extra.runAt ?? T0;
  return plainTask({ ...extra, name, args, hash: extra.hash ?? taskHash(name, args), runAt, enqueuedAt: extra.enqueuedAt ?? runAt - 1000 });
}

/** Inserts the tasks and returns their ids. */
export async function seed(db: TestDatabase, tasks: NewTask[]): Promise<string[]> {
  return db.store.insertTasks(tasks);
}

/** A claim for both test names at T0, any queue, priority DESC, up to 100 rows. */
export function claimReq(extra: Partial<ClaimRequest> = {}): ClaimRequest {
  return {
    names: [JOB, OTHER],
    queues: null,
    excludeQueues: null,
    ordering: 'DESC',
    workerId: 'worker-a',
    nowMs: T0,
    leaseMs: LEASE_MS,
    limit: 100,
    ...extra,
  };
}

/** Claims exactly the task `id` (every other due task is first moved out of the way). */
export async function claimOne(db: TestDatabase, id: string, extra: Partial<ClaimRequest> = {}): Promise<TaskRow> {
  const rows = await db.store.claim(claimReq(extra));
  const mine = rows.find((r) => r.id === id);
  if (!mine) throw new Error(`task ${id} was not claimed (claimed: ${rows.map((r) => r.id).join(', ') || 'none'})`);
  if (rows.length > 1) await db.store.release(rows.filter((r) => r.id !== id));
  return mine;
}

export function errorAt(message: string, attempt: number, at: number, workerId: string | null = 'worker-a'): ErrorRecord {
  return { class: 'Error', message, stack: `Error: ${message}\n    at test (store.test.ts:1:1)`, attempt, at, workerId };
}

export function success(task: TaskRow, finishedAt: number, returnValue: string | null, successorAt: number | null = null): Completion {
  return { task, finishedAt, returnValue, successorAt };
}

export async function count(db: TestDatabase, table: 'tasks' | 'completed' | 'locks' | 'schedules' | 'scheduleSlots'): Promise<number> {
  const [row] = (await db.store.knex(db.store.tables[table]).count({ n: '*' })) as Array<{ n: unknown }>;
  return Number(row!.n);
}

/** Every pending row, by id. */
export async function pendingRows(db: TestDatabase): Promise<TaskRow[]> {
  const ids = (await db.store.knex(db.store.tables.tasks).select('id').orderBy('id')) as Array<{ id: unknown }>;
  const rows: TaskRow[] = [];
  for (const { id } of ids) rows.push((await db.store.findPending(String(id)))!);
  return rows;
}

export async function completedRow(db: TestDatabase, id: string): Promise<CompletedRow> {
  const row = await db.store.findCompleted(id);
  if (!row) throw new Error(`task ${id} is not in the completed table`);
  return row;
}

/** Text that quoting, JSON or a driver could damage: quotes, backslashes, controls, non-ASCII, 4-byte UTF-8. */
export const AWKWARD = `it's "quoted" \\ back\\slash /slash\ttab\r\nCRLF\nnewline \u0001\u001f é ü ß 中文 😀 \u2028\u2029 ' OR 1=1; --`;

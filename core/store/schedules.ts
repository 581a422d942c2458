/**
 * The cron schedules' two tables: one row per schedule (what it is, the last slot handled, when a
 * worker last declared it) and one row per enqueued slot, whose primary key (task name, schedule
 * key, slot) makes each slot enqueued exactly once however many workers race for it.
 */
import { newTaskRow, type NewTask } from './rows.js';
import type { Store } from './store.js';

/** A schedule as stored (camelCase of its row). */
export interface ScheduleRecord {
  name: string;
  key: string;
  cron: string;
  timezone: string;
  /** The JSON text of its arguments. */
  args: string;
  catchUp: string;
  lastSlot: number | null;
  updatedAt: number;
  updatedBy: string | null;
}

/** What a worker's task files declare of a schedule. */
export type ScheduleDeclaration = Pick<ScheduleRecord, 'name' | 'key' | 'cron' | 'timezone' | 'args' | 'catchUp'>;

function recordOf(r: Record<string, unknown>): ScheduleRecord {
  return {
    name: String(r.name),
    key: String(r.key),
    cron: String(r.cron),
    timezone: String(r.timezone),
    args: String(r.args),
    catchUp: String(r.catch_up),
    lastSlot: r.last_slot === null || r.last_slot === undefined ? null : Number(r.last_slot),
    updatedAt: Number(r.updated_at),
    updatedBy: r.updated_by === null || r.updated_by === undefined ? null : String(r.updated_by),
  };
}

/** Every schedule, by task name and key. */
export async function listSchedules(store: Store): Promise<ScheduleRecord[]> {
  const rows = (await store.retrying(() => store.knex(store.tables.schedules).select('*').orderBy(['name', 'key']))) as Record<string, unknown>[];
  return rows.map(recordOf);
}

/** Records a schedule first seen now; its first slot is the first after `nowMs`. A twin insert by another worker is ignored. */
export async function registerSchedule(store: Store, s: ScheduleDeclaration, nowMs: number, workerId: string): Promise<void> {
  await store.retrying(() =>
    store
      .knex(store.tables.schedules)
      .insert({ name: s.name, key: s.key, cron: s.cron, timezone: s.timezone, args: s.args, catch_up: s.catchUp, last_slot: nowMs, updated_at: nowMs, updated_by: workerId })
      .onConflict(['name', 'key'])
      .ignore(),
  );
}

/** Writes what the task files declare now, and that `workerId` declared it at `nowMs`. */
export async function declareSchedule(store: Store, s: ScheduleDeclaration, nowMs: number, workerId: string): Promise<void> {
  await store.retrying(() =>
    store
      .knex(store.tables.schedules)
      .where({ name: s.name, key: s.key })
      .update({ cron: s.cron, timezone: s.timezone, args: s.args, catch_up: s.catchUp, updated_at: nowMs, updated_by: workerId }),
  );
}

/** Moves a schedule's last handled slot forward to `slot`; never back, whoever wins a race. */
export async function advanceLastSlot(store: Store, name: string, key: string, slot: number, nowMs: number, workerId: string): Promise<void> {
  await store.retrying(() =>
    store
      .knex(store.tables.schedules)
      .where({ name, key })
      .where((b) => b.whereNull('last_slot').orWhere('last_slot', '<', slot))
      .update({ last_slot: slot, updated_at: nowMs, updated_by: workerId }),
  );
}

/**
 * Enqueues one slot's task, exactly once in total: the slot row and the task are inserted in one
 * transaction, and a second insert of the same slot fails on the slot's key and rolls back.
 * Returns the new task's id, or null when another worker enqueued this slot first.
 */
export async function enqueueSlot(store: Store, key: string, slot: number, task: NewTask, nowMs: number): Promise<string | null> {
  try {
    return await store.tx(async (trx) => {
      // The slot row first: it is the exactly-once guard, and on SQLite a write transaction
      // must begin with a write.
      await trx(store.tables.scheduleSlots).insert({ name: task.name, key, slot, task_id: null, created_at: nowMs });
      const [id] = await store.dialect.insertReturningIds(trx, store.tables.tasks, [newTaskRow(task)]);
      await trx(store.tables.scheduleSlots).where({ name: task.name, key, slot }).update({ task_id: id });
      return id!;
    });
  } catch (err) {
    if (store.dialect.classifyError(err) === 'unique') return null;
    throw err;
  }
}

/** Pending tasks of each schedule, keyed `name\0key`. */
export async function pendingBySchedule(store: Store): Promise<Map<string, number>> {
  const counts = (await store.retrying(() =>
    store.knex(store.tables.tasks).select('name', 'recurring_key').count({ n: '*' }).whereNotNull('recurring_key').groupBy('name', 'recurring_key'),
  )) as Array<{ name: string; recurring_key: string; n: unknown }>;
  return new Map(counts.map((c) => [`${c.name}\u0000${c.recurring_key}`, Number(c.n)]));
}

/** Pending tasks of one schedule. */
export async function countPendingOfSchedule(store: Store, name: string, key: string): Promise<number> {
  const [row] = (await store.retrying(() => store.knex(store.tables.tasks).where({ name, recurring_key: key }).count({ n: '*' }))) as Array<{ n: unknown }>;
  return Number(row?.n ?? 0);
}

/** Deletes slot rows created before `beforeMs` (they only guard slots after a schedule's last slot). */
export async function trimSlots(store: Store, beforeMs: number): Promise<void> {
  await store.retrying(() => store.knex(store.tables.scheduleSlots).where('created_at', '<', beforeMs).del());
}

/** Deletes the records of a task's schedules (one key, or all its keys) and their slot rows; pending tasks stay. */
export async function removeSchedules(store: Store, name: string, key: string | null): Promise<number> {
  return store.tx(async (trx) => {
    const q = (table: string) => {
      const b = trx(table).where('name', name);
      if (key !== null) b.where('key', key);
      return b;
    };
    const n = await q(store.tables.schedules).del();
    await q(store.tables.scheduleSlots).del();
    return n;
  });
}

/**
 * The scheduler role every worker plays for the cron schedules its task files declare: when a
 * slot is due, enqueue its task, exactly once in total however many workers on however many
 * machines run. Exactly-once is the database's job, not timing's: each enqueue inserts a row keyed
 * (task name, schedule key, slot) in the same transaction as the task, and a second insert of the
 * same slot fails on that key and rolls back.
 *
 * A slot seen within the grace period after its time is on time and runs; older ones were missed
 * while no worker ran and follow the schedule's `catchUp`. A new schedule starts with the first
 * slot after it was first seen; a changed one takes effect from its next slot.
 */
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { cronSlotsBetween } from '../policy/cron.js';
import type { DeclaredSchedule } from '../definition/recurring.js';
import { newTaskRow, plainTask } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { taskHash } from '../base/json.js';
import { allRegistered, getRegistered } from '../definition/registry.js';

export interface SchedulerOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  workerId: string;
  schedules: readonly DeclaredSchedule[];
  /** The zone of schedules that name none (the `timezone` setting). */
  defaultTimezone: string;
  /** Slots older than this when first seen count as missed. */
  graceMs: number;
  /** The definition's options the scheduler copies onto each task. */
  taskDefaults: (name: string) => { queue: string | null; priority: number; expiresAfter: number | null };
  /** Names this worker registers (removed schedules are reported only for these). */
  names: readonly string[];
}

/** Most slots looked at in one pass (a per-second rule after a week-long outage stops here). */
const MAX_SLOTS_PER_PASS = 20_000;
const REMOVED_REPORT_EVERY_MS = 3_600_000;
const SLOT_ROWS_KEPT_MS = 7 * 86_400_000;

interface ScheduleRow {
  name: string;
  key: string;
  cron: string;
  timezone: string;
  args: string;
  catch_up: string;
  last_slot: unknown;
  updated_at: unknown;
}

/** How often a worker that declares a schedule marks it as still declared (`updated_at`). */
const SEEN_EVERY_MS = 60_000;

export class RecurringScheduler {
  private lastRemovedReport = -Infinity;
  private lastTrim = -Infinity;

  constructor(private readonly o: SchedulerOptions) {}

  /** Enqueues every due slot; returns the ids of the tasks this pass created. */
  async tick(): Promise<string[]> {
    const { store } = this.o;
    const now = this.o.clock.now();
    // Declaring no schedule, a worker still reports the ones its task files dropped, at that
    // report's hourly pace; between reports it has nothing to read.
    if (this.o.schedules.length === 0 && now - this.lastRemovedReport < REMOVED_REPORT_EVERY_MS) return [];
    const rows = (await store.retrying(() => store.knex(store.tables.schedules).select('*'))) as ScheduleRow[];
    const byKey = new Map(rows.map((r) => [`${r.name}\u0000${r.key}`, r]));
    const created: string[] = [];
    for (const s of this.o.schedules) {
      const row = byKey.get(`${s.name}\u0000${s.key}`);
      const zone = s.timezone ?? this.o.defaultTimezone;
      if (!row) {
        await this.register(s, zone, now);
        continue;
      }
      if (row.cron !== s.cron || row.timezone !== zone || row.args !== s.args || row.catch_up !== String(s.catchUp)) {
        await this.update(s, zone, now);
        this.o.log.info('cron schedule changed; it takes effect from its next slot', { name: s.name, key: s.key, cron: s.cron, timezone: zone });
      } else if (now - Number(row.updated_at) >= SEEN_EVERY_MS) {
        // `bgtasks schedules` shows when a worker last declared it: a removed one goes stale.
        await this.update(s, zone, now);
      }
      created.push(...(await this.handle(s, zone, Number(row.last_slot), now)));
    }
    await this.reportRemoved(rows, now);
    await this.trimSlots(now);
    return created;
  }

  private async register(s: DeclaredSchedule, zone: string, now: number): Promise<void> {
    const { store } = this.o;
    await store.retrying(() =>
      store
        .knex(store.tables.schedules)
        .insert({ name: s.name, key: s.key, cron: s.cron, timezone: zone, args: s.args, catch_up: String(s.catchUp), last_slot: now, updated_at: now, updated_by: this.o.workerId })
        .onConflict(['name', 'key'])
        .ignore(),
    );
  }

  private async update(s: DeclaredSchedule, zone: string, now: number): Promise<void> {
    const { store } = this.o;
    await store.retrying(() =>
      store
        .knex(store.tables.schedules)
        .where({ name: s.name, key: s.key })
        .update({ cron: s.cron, timezone: zone, args: s.args, catch_up: String(s.catchUp), updated_at: now, updated_by: this.o.workerId }),
    );
  }

  /** The slots after `lastSlot` that are due: on-time ones, plus missed ones per catchUp. */
  private chooseSlots(s: DeclaredSchedule, zone: string, lastSlot: number, now: number): { run: number[]; latest: number | null } {
    const due = cronSlotsBetween(s.cron, zone, lastSlot, now, MAX_SLOTS_PER_PASS);
    if (due.length === 0) return { run: [], latest: null };
    const cutoff = now - this.o.graceMs;
    const missed = due.filter((slot) => slot < cutoff);
    const onTime = due.filter((slot) => slot >= cutoff);
    const backfill = s.catchUp === 'skip' ? 0 : s.catchUp === 'once' ? 1 : s.catchUp;
    const fromMissed = backfill > 0 ? missed.slice(-backfill) : [];
    if (missed.length > 0) {
      this.o.log.info('cron slots were missed while no worker ran', {
        name: s.name,
        key: s.key,
        missed: missed.length,
        catch_up: String(s.catchUp),
        running: fromMissed.length,
      });
    }
    return { run: [...fromMissed, ...onTime], latest: due[due.length - 1]! };
  }

  private async handle(s: DeclaredSchedule, zone: string, lastSlot: number, now: number): Promise<string[]> {
    const { run, latest } = this.chooseSlots(s, zone, lastSlot, now);
    if (latest === null) return [];
    const created: string[] = [];
    for (const slot of run) {
      const id = await this.enqueueSlot(s, zone, slot, now);
      if (id !== null) created.push(id);
    }
    const { store } = this.o;
    // Monotonic: never move last_slot back, whoever wins the race.
    await store.retrying(() =>
      store
        .knex(store.tables.schedules)
        .where({ name: s.name, key: s.key })
        .where((b) => b.whereNull('last_slot').orWhere('last_slot', '<', latest))
        .update({ last_slot: latest, updated_at: now, updated_by: this.o.workerId }),
    );
    return created;
  }

  /** One slot's task, unless another worker enqueued it first. */
  private async enqueueSlot(s: DeclaredSchedule, zone: string, slot: number, now: number): Promise<string | null> {
    const { store } = this.o;
    const defaults = this.o.taskDefaults(s.name);
    const task = plainTask({
      name: s.name,
      args: s.args,
      hash: taskHash(s.name, s.args),
      queue: defaults.queue,
      priority: defaults.priority,
      runAt: slot,
      enqueuedAt: now,
      expiresAt: defaults.expiresAfter ? slot + Math.round(defaults.expiresAfter * 1000) : null,
      timezone: zone,
      recurringKey: s.key,
    });
    try {
      return await store.tx(async (trx) => {
        // The slot row first: it is the exactly-once guard, and on SQLite a write transaction
        // must begin with a write.
        await trx(store.tables.scheduleSlots).insert({ name: s.name, key: s.key, slot, task_id: null, created_at: now });
        const [id] = await store.dialect.insertReturningIds(trx, store.tables.tasks, [newTaskRow(task)]);
        await trx(store.tables.scheduleSlots).where({ name: s.name, key: s.key, slot }).update({ task_id: id });
        return id!;
      });
    } catch (err) {
      if (store.dialect.classifyError(err) === 'unique') return null;
      throw err;
    }
  }

  /** Schedules in the database that this worker's code no longer declares: reported, never deleted. */
  private async reportRemoved(rows: ScheduleRow[], now: number): Promise<void> {
    if (now - this.lastRemovedReport < REMOVED_REPORT_EVERY_MS) return;
    this.lastRemovedReport = now;
    const declared = new Set(this.o.schedules.map((s) => `${s.name}\u0000${s.key}`));
    const { store } = this.o;
    for (const r of rows) {
      if (!this.o.names.includes(r.name) || declared.has(`${r.name}\u0000${r.key}`)) continue;
      const [{ n }] = (await store.knex(store.tables.tasks).where({ name: r.name, recurring_key: r.key }).count({ n: '*' })) as Array<{ n: unknown }>;
      this.o.log.warn('a cron schedule in the database is no longer declared in the task files; this worker does not enqueue it', {
        name: r.name,
        key: r.key,
        cron: r.cron,
        pending: Number(n),
      });
    }
  }

  /** Slot rows only guard slots after a schedule's last slot; old ones can go. */
  private async trimSlots(now: number): Promise<void> {
    if (now - this.lastTrim < 3_600_000) return;
    this.lastTrim = now;
    const { store } = this.o;
    await store.retrying(() => store.knex(store.tables.scheduleSlots).where('created_at', '<', now - SLOT_ROWS_KEPT_MS).del());
  }
}

/** What a worker knows when it builds its scheduler. */
export interface SchedulerContext extends Omit<SchedulerOptions, 'schedules' | 'taskDefaults'> {
  /** The worker's named connection (null: the default one). */
  connection: string | null;
}

/**
 * The scheduler for the cron schedules of the tasks a worker runs. A task stored on another
 * connection is enqueued by the workers of that connection. With no schedule declared it only
 * reports schedules that the task files no longer declare (after the last one is removed).
 */
export function schedulerFor(c: SchedulerContext): RecurringScheduler {
  const names = new Set(c.names);
  const mine = (conn: string | null | undefined) => (conn && conn !== 'default' ? conn : null);
  const defs = allRegistered().filter((d) => names.has(d.name) && mine(d.options.connection) === mine(c.connection));
  const schedules = defs.flatMap((d) => d.schedules ?? []);
  const { connection: _connection, ...options } = c;
  return new RecurringScheduler({
    ...options,
    schedules,
    taskDefaults: (name) => {
      const d = getRegistered(name);
      return { queue: d?.options.queue ?? null, priority: d?.options.priority ?? 0, expiresAfter: d?.options.expiresAfter ?? null };
    },
  });
}

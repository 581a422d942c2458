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
import { plainTask, type NewTask } from '../store/rows.js';
import { checkConcurrencyKey } from '../policy/flow.js';
import {
  advanceLastSlot,
  countPendingOfSchedule,
  declareSchedule,
  enqueueSlot,
  listSchedules,
  registerSchedule,
  trimSlots,
  type ScheduleDeclaration,
  type ScheduleRecord,
} from '../store/schedules.js';
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
  taskDefaults: (name: string) => {
    queue: string | null;
    priority: number;
    expiresAfter: number | null;
    /** The definition's concurrency key for these arguments (a fixed string, or its function's). */
    concurrencyKey: (args: unknown[]) => string | null;
  };
  /** Names this worker registers (removed schedules are reported only for these). */
  names: readonly string[];
}

/** Most slots looked at in one pass (a per-second rule after a week-long outage stops here). */
const MAX_SLOTS_PER_PASS = 20_000;
const REMOVED_REPORT_EVERY_MS = 3_600_000;
const SLOT_ROWS_KEPT_MS = 7 * 86_400_000;

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
    const rows = await listSchedules(store);
    const byKey = new Map(rows.map((r) => [`${r.name}\u0000${r.key}`, r]));
    const created: string[] = [];
    for (const s of this.o.schedules) {
      const row = byKey.get(`${s.name}\u0000${s.key}`);
      const declared = this.declaration(s);
      if (!row) {
        await registerSchedule(store, declared, now, this.o.workerId);
        continue;
      }
      if (row.cron !== declared.cron || row.timezone !== declared.timezone || row.args !== declared.args || row.catchUp !== declared.catchUp) {
        await declareSchedule(store, declared, now, this.o.workerId);
        this.o.log.info('cron schedule changed; it takes effect from its next slot', { name: s.name, key: s.key, cron: s.cron, timezone: declared.timezone });
      } else if (now - row.updatedAt >= SEEN_EVERY_MS) {
        // `bgtasks schedules` shows when a worker last declared it: a removed one goes stale.
        await declareSchedule(store, declared, now, this.o.workerId);
      }
      created.push(...(await this.handle(s, declared.timezone, Number(row.lastSlot), now)));
    }
    await this.reportRemoved(rows, now);
    await this.trimSlots(now);
    return created;
  }

  private declaration(s: DeclaredSchedule): ScheduleDeclaration {
    return { name: s.name, key: s.key, cron: s.cron, timezone: s.timezone ?? this.o.defaultTimezone, args: s.args, catchUp: String(s.catchUp) };
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
      const id = await enqueueSlot(this.o.store, s.key, slot, this.slotTask(s, zone, slot, now), now);
      if (id !== null) created.push(id);
    }
    await advanceLastSlot(this.o.store, s.name, s.key, latest, now, this.o.workerId);
    return created;
  }

  /** One slot's task: the schedule's call, with the definition's queue, priority and expiry. */
  private slotTask(s: DeclaredSchedule, zone: string, slot: number, now: number): NewTask {
    const defaults = this.o.taskDefaults(s.name);
    return plainTask({
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
      concurrencyKey: this.keyOf(s, defaults),
    });
  }

  /** A slot's key; a key function that throws gives none (the slot still runs), with a warning. */
  private keyOf(s: DeclaredSchedule, defaults: ReturnType<SchedulerOptions['taskDefaults']>): string | null {
    try {
      return defaults.concurrencyKey(JSON.parse(s.args) as unknown[]);
    } catch (err) {
      this.o.log.warn('the concurrencyKey function of a cron schedule\'s task failed; its slot runs without a key', {
        name: s.name,
        key: s.key,
        error: err instanceof Error ? err.message : String(err),
      });
      return null;
    }
  }

  /** Schedules in the database that this worker's code no longer declares: reported, never deleted. */
  private async reportRemoved(rows: ScheduleRecord[], now: number): Promise<void> {
    if (now - this.lastRemovedReport < REMOVED_REPORT_EVERY_MS) return;
    this.lastRemovedReport = now;
    const declared = new Set(this.o.schedules.map((s) => `${s.name}\u0000${s.key}`));
    for (const r of rows) {
      if (!this.o.names.includes(r.name) || declared.has(`${r.name}\u0000${r.key}`)) continue;
      this.o.log.warn('a cron schedule in the database is no longer declared in the task files; this worker does not enqueue it', {
        name: r.name,
        key: r.key,
        cron: r.cron,
        pending: await countPendingOfSchedule(this.o.store, r.name, r.key),
      });
    }
  }

  /** Slot rows only guard slots after a schedule's last slot; old ones can go. */
  private async trimSlots(now: number): Promise<void> {
    if (now - this.lastTrim < 3_600_000) return;
    this.lastTrim = now;
    await trimSlots(this.o.store, now - SLOT_ROWS_KEPT_MS);
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
      const key = d?.options.concurrencyKey;
      return {
        queue: d?.options.queue ?? null,
        priority: d?.options.priority ?? 0,
        expiresAfter: d?.options.expiresAfter ?? null,
        concurrencyKey: (args) => (typeof key === 'function' ? checkConcurrencyKey(key(...args), `concurrencyKey of ${name}`) : (key ?? null)),
      };
    },
  });
}

/**
 * `bgtasks schedules`: every cron schedule the workers have registered (from `background({ cron })`
 * in task files), with its zone, last handled slot, next slot, pending instances, and when a
 * worker last declared it. `--remove task[:key]` deletes the record of a schedule that no task
 * file declares any more (its pending tasks stay).
 */
import { currentClock } from '../../core/base/clock.js';
import { nextCronSlot } from '../../core/policy/cron.js';
import { listSchedules, pendingBySchedule, removeSchedules } from '../../core/store/schedules.js';
import { UsageError } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { json, line, table } from '../format.js';
import { openStore, type StoreFlags } from '../open-store.js';

/** A schedule not declared by any worker for this long is shown as stale. */
const STALE_MS = 10 * 60_000;

export interface ScheduleInfo {
  name: string;
  key: string;
  cron: string;
  timezone: string;
  args: unknown[];
  catchUp: string;
  lastSlot: string | null;
  nextSlot: string | null;
  pending: number;
  lastSeenBy: string | null;
  lastSeenAt: string;
  /** No worker has declared it for 10 minutes: removed from the task files, or no worker runs. */
  stale: boolean;
}

function removeTarget(target: string): { name: string; key: string | null } {
  const at = target.indexOf(':');
  const name = at < 0 ? target : target.slice(0, at);
  const key = at < 0 ? null : target.slice(at + 1);
  if (!name || key === '') throw new UsageError(`Invalid --remove: ${JSON.stringify(target)} — expected task or task:key`);
  return { name, key };
}

export async function schedulesCommand(flags: StoreFlags & { remove?: string }): Promise<number> {
  const { store } = await openStore(flags);
  const now = currentClock().now();
  if (flags.remove !== undefined) {
    const { name, key } = removeTarget(flags.remove);
    const n = await removeSchedules(store, name, key);
    if (n === 0) throw new UsageError(`No cron schedule matches ${JSON.stringify(flags.remove)} — see bgtasks schedules`);
    line(`Removed ${n} schedule record(s). Pending tasks stay; a worker that still declares the schedule registers it again.`);
    return EXIT.OK;
  }
  const rows = await listSchedules(store);
  const pending = await pendingBySchedule(store);
  const list: ScheduleInfo[] = rows.map((r) => {
    const last = r.lastSlot;
    let next: number | null;
    try {
      next = nextCronSlot(r.cron, r.timezone, Math.max(last ?? now, now - 1));
    } catch {
      // A row written by a newer bgtasks may hold a rule this version cannot read.
      next = null;
    }
    return {
      name: r.name,
      key: r.key,
      cron: r.cron,
      timezone: r.timezone,
      args: JSON.parse(r.args) as unknown[],
      catchUp: r.catchUp,
      lastSlot: last === null ? null : new Date(last).toISOString(),
      nextSlot: next === null ? null : new Date(next).toISOString(),
      pending: pending.get(`${r.name}\u0000${r.key}`) ?? 0,
      lastSeenBy: r.updatedBy,
      lastSeenAt: new Date(r.updatedAt).toISOString(),
      stale: now - r.updatedAt > STALE_MS,
    };
  });
  if (flags.json) {
    json(list);
    return EXIT.OK;
  }
  if (list.length === 0) {
    line('No cron schedules registered yet (a worker registers the schedules of its task files when it starts).');
    return EXIT.OK;
  }
  line(
    table(
      ['TASK', 'KEY', 'CRON', 'ZONE', 'LAST SLOT', 'NEXT SLOT', 'PENDING', 'LAST SEEN'],
      list.map((s) => [s.name, s.key, s.cron, s.timezone, s.lastSlot ?? '-', s.stale ? '(stale)' : (s.nextSlot ?? '-'), String(s.pending), s.lastSeenAt]),
      [6],
    ),
  );
  if (list.some((s) => s.stale)) {
    line('\n(stale): no worker has declared it for 10 minutes — removed from the task files, or no worker runs. `--remove task[:key]` deletes its record.');
  }
  return EXIT.OK;
}

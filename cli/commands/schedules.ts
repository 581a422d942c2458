/**
 * `bgtasks schedules`: every cron schedule the workers have registered (from `background({ cron })`
 * in task files), with its zone, last handled slot, next slot and pending instances.
 */
import { currentClock } from '../../core/clock-state.js';
import { nextCronSlot } from '../../core/policy/cron.js';
import { EXIT } from '../exit-codes.js';
import { json, line, table } from '../format.js';
import { openStore, type StoreFlags } from '../ops-common.js';

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
  updatedBy: string | null;
  updatedAt: string;
}

export async function schedulesCommand(flags: StoreFlags): Promise<number> {
  const { store } = await openStore(flags);
  const now = currentClock().now();
  const rows = (await store.knex(store.tables.schedules).select('*').orderBy(['name', 'key'])) as Array<Record<string, unknown>>;
  const counts = (await store
    .knex(store.tables.tasks)
    .select('name', 'recurring_key')
    .count({ n: '*' })
    .whereNotNull('recurring_key')
    .groupBy('name', 'recurring_key')) as Array<{ name: string; recurring_key: string; n: unknown }>;
  const pending = new Map(counts.map((c) => [`${c.name}\u0000${c.recurring_key}`, Number(c.n)]));
  const list: ScheduleInfo[] = rows.map((r) => {
    const last = r.last_slot === null ? null : Number(r.last_slot);
    let next: number | null;
    try {
      next = nextCronSlot(String(r.cron), String(r.timezone), Math.max(last ?? now, now - 1));
    } catch {
      // A row written by a newer bgtasks may hold a rule this version cannot read.
      next = null;
    }
    return {
      name: String(r.name),
      key: String(r.key),
      cron: String(r.cron),
      timezone: String(r.timezone),
      args: JSON.parse(String(r.args)) as unknown[],
      catchUp: String(r.catch_up),
      lastSlot: last === null ? null : new Date(last).toISOString(),
      nextSlot: next === null ? null : new Date(next).toISOString(),
      pending: pending.get(`${String(r.name)}\u0000${String(r.key)}`) ?? 0,
      updatedBy: r.updated_by === null ? null : String(r.updated_by),
      updatedAt: new Date(Number(r.updated_at)).toISOString(),
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
      ['TASK', 'KEY', 'CRON', 'ZONE', 'LAST SLOT', 'NEXT SLOT', 'PENDING'],
      list.map((s) => [s.name, s.key, s.cron, s.timezone, s.lastSlot ?? '-', s.nextSlot ?? '-', String(s.pending)]),
      [6],
    ),
  );
  return EXIT.OK;
}

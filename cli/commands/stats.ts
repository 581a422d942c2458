/** `bgtasks stats`: counts per queue and state, the oldest due task's wait, the last hour's failures. */
import { currentClock } from '../../core/base/clock.js';
import { collectStats } from '../../core/store/admin.js';
import { EXIT } from '../exit-codes.js';
import { duration, iso, json, line, queueLabel, table } from '../format.js';
import { parseList } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export interface StatsFlags extends StoreFlags {
  queue?: string;
}

export async function statsCommand(flags: StatsFlags): Promise<number> {
  const queues = parseList(flags.queue, '--queue', 'queue names');
  const { store } = await openStore(flags);
  const s = await collectStats(store, currentClock().now(), queues);
  if (flags.json) {
    json(s);
    return EXIT.OK;
  }
  const row = (label: string, c: { READY: number; RUNNING: number; SUCCESSFUL: number; FAILED: number }) => [
    label,
    String(c.READY),
    String(c.RUNNING),
    String(c.SUCCESSFUL),
    String(c.FAILED),
  ];
  const rows = s.queues.map((q) => row(queueLabel(q.queue), q));
  if (s.queues.length !== 1) rows.push(row('(all)', s.totals));
  line(table(['QUEUE', 'READY', 'RUNNING', 'SUCCESSFUL', 'FAILED'], rows, [1, 2, 3, 4]));
  line();
  const o = s.oldestDue;
  line(
    o
      ? `Oldest due task: #${o.id} ${o.name} (queue ${queueLabel(o.queue)}), due since ${iso(o.dueSince)}, waiting ${duration(o.waitSeconds)}`
      : 'Oldest due task: none (nothing is waiting)',
  );
  line(`Failures in the last hour: ${s.failuresLastHour}`);
  return EXIT.OK;
}

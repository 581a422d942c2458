/**
 * `bgtasks health --max-wait S [--max-failures N]`: exit 0 when the queue is healthy, 1 with the
 * reason on one line when it is not. For monitoring and cron alerting.
 */
import { currentClock } from '../../core/base/clock.js';
import { healthNumbers } from '../../core/store/admin.js';
import { numberFlag } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { duration, json, line } from '../format.js';
import { parseList } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export interface HealthFlags extends StoreFlags {
  maxWait?: string;
  maxFailures?: string;
  queue?: string;
}

export async function healthCommand(flags: HealthFlags): Promise<number> {
  const maxWait = numberFlag(flags.maxWait, '--max-wait', 'seconds >= 0', (n) => n >= 0)!;
  const maxFailures = numberFlag(flags.maxFailures, '--max-failures', 'an integer >= 1', (n) => Number.isInteger(n) && n >= 1);
  const queues = parseList(flags.queue, '--queue', 'queue names');
  const { store } = await openStore(flags);
  const h = await healthNumbers(store, currentClock().now(), queues);
  const problems: string[] = [];
  const wait = h.oldestDue?.waitSeconds ?? 0;
  if (h.oldestDue && wait > maxWait) {
    problems.push(`task #${h.oldestDue.id} (${h.oldestDue.name}) has waited ${duration(wait)}, more than --max-wait ${maxWait} s`);
  }
  if (maxFailures !== undefined && h.failuresLastHour >= maxFailures) {
    problems.push(`${h.failuresLastHour} task(s) failed in the last hour, --max-failures is ${maxFailures}`);
  }
  const ok = problems.length === 0;
  if (flags.json) {
    json({ ok, problems, oldestDue: h.oldestDue, oldestDueWaitSeconds: wait, failuresLastHour: h.failuresLastHour, maxWait, maxFailures: maxFailures ?? null });
  } else if (ok) {
    line(`OK: oldest due task waited ${duration(wait)} (max ${maxWait} s); ${h.failuresLastHour} failure(s) in the last hour${maxFailures !== undefined ? ` (must stay under ${maxFailures})` : ''}`);
  } else {
    line(`UNHEALTHY: ${problems.join('; ')}`);
  }
  return ok ? EXIT.OK : EXIT.FAILURE;
}

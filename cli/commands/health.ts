/**
 * `bgtasks health --max-wait S [--max-failures N] [--min-workers N]`: exit 0 when the queue is
 * healthy, 1 with the reason on one line when it is not. For monitoring and cron alerting. Live
 * workers come from the worker registry (a worker is alive while its registry heartbeat is).
 */
import { currentClock } from '../../core/base/clock.js';
import { isLiveState, workerState } from '../../core/policy/status.js';
import { healthNumbers } from '../../core/store/admin.js';
import { queueRecords } from '../../core/store/queues.js';
import { listWorkers, type WorkerRecord } from '../../core/store/workers.js';
import { numberFlag } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { duration, json, line } from '../format.js';
import { parseList } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export interface HealthFlags extends StoreFlags {
  maxWait?: string;
  maxFailures?: string;
  minWorkers?: string;
  queue?: string;
}

/** How far back the registry is read: any live worker beat well within it. */
const REGISTRY_WINDOW_MS = 3_600_000;

/** Whether a worker claims from `queue` (its --queue list, or every queue but its excluded ones). */
function serves(w: WorkerRecord, queue: string): boolean {
  return (w.queues === null || w.queues.includes(queue)) && !(w.excludeQueues ?? []).includes(queue);
}

export async function healthCommand(flags: HealthFlags): Promise<number> {
  const maxWait = numberFlag(flags.maxWait, '--max-wait', 'seconds >= 0', (n) => n >= 0)!;
  const maxFailures = numberFlag(flags.maxFailures, '--max-failures', 'an integer >= 1', (n) => Number.isInteger(n) && n >= 1);
  const minWorkers = numberFlag(flags.minWorkers, '--min-workers', 'an integer >= 1', (n) => Number.isInteger(n) && n >= 1);
  const queues = parseList(flags.queue, '--queue', 'queue names');
  const { store } = await openStore(flags);
  const now = currentClock().now();
  // A paused queue's tasks wait because an operator paused it: they are named, not counted as
  // waiting (a pause paged whoever watches --max-wait).
  const paused = (await queueRecords(store)).filter((q) => q.paused && (!queues || queues.includes(q.name))).map((q) => q.name);
  const h = await healthNumbers(store, now, queues, paused);
  const alive = (await listWorkers(store, now - REGISTRY_WINDOW_MS)).filter((w) => isLiveState(workerState(w, now)));
  // With --queue, each named queue needs its own live workers: one serving another queue is no help.
  const perQueue = queues ? queues.map((q) => ({ queue: q, workers: alive.filter((w) => serves(w, q)).length })) : null;
  const problems: string[] = [];
  const wait = h.oldestDue?.waitSeconds ?? 0;
  if (h.oldestDue && wait > maxWait) {
    problems.push(`task #${h.oldestDue.id} (${h.oldestDue.name}) has waited ${duration(wait)}, more than --max-wait ${maxWait} s`);
  }
  if (maxFailures !== undefined && h.failuresLastHour >= maxFailures) {
    problems.push(`${h.failuresLastHour} task(s) failed in the last hour, --max-failures is ${maxFailures}`);
  }
  if (minWorkers !== undefined) {
    if (perQueue) {
      for (const q of perQueue) if (q.workers < minWorkers) problems.push(`${q.workers} live worker(s) serve queue ${q.queue}, --min-workers is ${minWorkers}`);
    } else if (alive.length < minWorkers) {
      problems.push(`${alive.length} live worker(s), --min-workers is ${minWorkers}`);
    }
  }
  const ok = problems.length === 0;
  if (flags.json) {
    json({
      ok,
      problems,
      oldestDue: h.oldestDue,
      oldestDueWaitSeconds: wait,
      failuresLastHour: h.failuresLastHour,
      workersAlive: alive.length,
      workersPerQueue: perQueue,
      pausedQueues: paused,
      maxWait,
      maxFailures: maxFailures ?? null,
      minWorkers: minWorkers ?? null,
    });
  } else if (ok) {
    line(
      `OK: ${h.oldestDue ? `oldest due task waited ${duration(wait)}` : 'no task is due'} (max ${maxWait} s); ${h.failuresLastHour} failure(s) in the last hour${maxFailures !== undefined ? ` (must stay under ${maxFailures})` : ''}; ` +
        `${alive.length} live worker(s)${minWorkers !== undefined ? ` (at least ${minWorkers}${perQueue ? ' per queue' : ''})` : ''}${pausedNote(paused)}`,
    );
  } else {
    line(`UNHEALTHY: ${problems.join('; ')}${pausedNote(paused)}`);
  }
  return ok ? EXIT.OK : EXIT.FAILURE;
}

function pausedNote(paused: readonly string[]): string {
  return paused.length === 0 ? '' : `; paused, not counted: ${paused.join(', ')}`;
}

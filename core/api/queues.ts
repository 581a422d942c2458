/**
 * Queues from the application: pause and resume one, set its limits, list them with their counts
 * (`pauseQueue`, `resumeQueue`, `setQueueLimits`, `queues`). The one implementation of each change
 * is store/queues.ts, shared with `bgtasks queues` and the dashboard.
 */
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import { ValidationError } from '../errors.js';
import { checkLimitCount, checkRateLimit, type RateLimit } from '../policy/flow.js';
import { reachableStore } from '../store/open.js';
import { pauseQueue as pauseRow, queueOverview, resumeQueue as resumeRow, setQueueLimits as setLimitsRow, type QueueInfo } from '../store/queues.js';

export type { QueueInfo };

type Target = { connection?: string };

/**
 * A queue name as a call or a command gives it; "no queue" cannot be paused or limited. `what`
 * is where it was given as the caller knows it (`pauseQueue()`, `queues pause`).
 */
export function checkQueueName(name: unknown, what: string, verb: 'paused' | 'resumed' | 'limited'): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 190 || name.includes('\u0000')) {
    throw new ValidationError(`Invalid queue name ${JSON.stringify(name)} for ${what} — expected 1 to 190 characters (tasks without a queue cannot be ${verb}: give them a queue)`);
  }
  return name;
}

async function store(o: Target) {
  return reachableStore(await getSettings(), o.connection);
}

/**
 * Pauses a queue on every worker (within one poll; at once on PostgreSQL): running tasks finish,
 * nothing more is claimed from it. A queue nobody used yet can be paused too (its future tasks
 * wait). Returns false if it was already paused.
 */
export async function pauseQueue(name: string, options: Target & { by?: string } = {}): Promise<boolean> {
  checkQueueName(name, 'pauseQueue()', 'paused');
  return pauseRow(await store(options), name, options.by ?? 'api', currentClock().now());
}

/** Resumes a paused queue. Returns false if it was not paused. */
export async function resumeQueue(name: string, options: Target & { by?: string } = {}): Promise<boolean> {
  checkQueueName(name, 'resumeQueue()', 'resumed');
  return resumeRow(await store(options), name, options.by ?? 'api', currentClock().now());
}

/**
 * Sets a queue's limits across every worker: `concurrency` (RUNNING tasks at once) and
 * `rateLimit` ({ limit, period } starts per period seconds, optionally perKey). `null` removes a
 * limit; a limit left out stays as it is.
 */
export async function setQueueLimits(
  name: string,
  limits: { concurrency?: number | null; rateLimit?: RateLimit | null },
  options: Target & { by?: string } = {},
): Promise<void> {
  checkQueueName(name, 'setQueueLimits()', 'limited');
  if (typeof limits !== 'object' || limits === null) throw new ValidationError('setQueueLimits: limits must be an object: { concurrency?, rateLimit? }');
  const unknown = Object.keys(limits).filter((k) => k !== 'concurrency' && k !== 'rateLimit');
  if (unknown.length > 0) throw new ValidationError(`setQueueLimits: unknown limit ${JSON.stringify(unknown[0])} — expected concurrency or rateLimit`);
  const concurrency = limits.concurrency === undefined || limits.concurrency === null ? limits.concurrency : checkLimitCount(limits.concurrency, `concurrency of queue ${name}`);
  const rateLimit = limits.rateLimit === undefined || limits.rateLimit === null ? limits.rateLimit : checkRateLimit(limits.rateLimit, `rateLimit of queue ${name}`);
  await setLimitsRow(await store(options), name, { concurrency, rateLimit }, options.by ?? 'api', currentClock().now());
}

/** Every queue that holds tasks or has a row (paused or limited), with its counts; no queue first. */
export async function queues(options: Target = {}): Promise<QueueInfo[]> {
  return queueOverview(await store(options), currentClock().now());
}

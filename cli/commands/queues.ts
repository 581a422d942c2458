/**
 * `bgtasks queues`: every queue with its counts, paused state and limits; `queues pause NAME`,
 * `queues resume NAME` and `queues set NAME --concurrency N --rate L/P`. Changes go through the
 * store's one implementation (store/queues.ts), as the API's and the dashboard's do.
 */
import os from 'node:os';
import { currentClock } from '../../core/base/clock.js';
import { checkQueueName } from '../../core/api/queues.js';
import { checkLimitCount, parseRateLimit, type RateLimit } from '../../core/policy/flow.js';
import { pauseQueue, queueOverview, resumeQueue, setQueueLimits } from '../../core/store/queues.js';
import { EXIT } from '../exit-codes.js';
import { json, line, queueLabel, table } from '../format.js';
import { UsageError } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

const by = () => `cli:${os.hostname()}:${process.pid}`;

const rateText = (r: RateLimit | null) => (r ? `${r.limit}/${r.period}s${r.perKey ? ' per key' : ''}` : '-');

export async function queuesCommand(flags: StoreFlags): Promise<number> {
  const { store } = await openStore(flags);
  const list = await queueOverview(store, currentClock().now());
  if (flags.json) {
    json(list);
    return EXIT.OK;
  }
  if (list.length === 0) {
    line('No queues: no task is stored and no queue is paused or limited.');
    return EXIT.OK;
  }
  line(
    table(
      ['QUEUE', 'STATE', 'CONCURRENCY', 'RATE', 'READY', 'RUNNING', 'SUCCESSFUL', 'FAILED'],
      list.map((q) => [
        queueLabel(q.name),
        q.paused ? 'paused' : 'running',
        q.concurrency === null ? '-' : String(q.concurrency),
        rateText(q.rateLimit),
        String(q.counts.READY),
        String(q.counts.RUNNING),
        String(q.counts.SUCCESSFUL),
        String(q.counts.FAILED),
      ]),
      [4, 5, 6, 7],
    ),
  );
  return EXIT.OK;
}

function queueArg(name: string | undefined, what: string): string {
  if (name === undefined) throw new UsageError(`Missing queue name — bgtasks queues ${what} NAME`);
  try {
    return checkQueueName(name, `queues ${what}`, what === 'pause' ? 'paused' : what === 'resume' ? 'resumed' : 'limited');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export async function pauseCommand(name: string | undefined, flags: StoreFlags): Promise<number> {
  const queue = queueArg(name, 'pause');
  const { store } = await openStore(flags);
  const changed = await pauseQueue(store, queue, by(), currentClock().now());
  line(changed ? `Paused queue ${queue}: running tasks finish; no worker claims more from it until it is resumed.` : `Queue ${queue} was already paused.`);
  return EXIT.OK;
}

export async function resumeCommand(name: string | undefined, flags: StoreFlags): Promise<number> {
  const queue = queueArg(name, 'resume');
  const { store } = await openStore(flags);
  const changed = await resumeQueue(store, queue, by(), currentClock().now());
  line(changed ? `Resumed queue ${queue}.` : `Queue ${queue} was not paused.`);
  return EXIT.OK;
}

export interface SetFlags extends StoreFlags {
  concurrency?: string;
  rate?: string;
  ratePerKey?: boolean;
}

/** `queues WORD` where WORD is no subcommand. */
export async function unknownQueuesCommand(sub: string): Promise<number> {
  throw new UsageError(`unknown command 'queues ${sub}' — expected queues, queues pause NAME, queues resume NAME or queues set NAME`);
}

/** `--concurrency N|none`, `--rate L/P|none` (none removes the limit). */
export async function setCommand(name: string | undefined, flags: SetFlags): Promise<number> {
  const queue = queueArg(name, 'set');
  const limits: { concurrency?: number | null; rateLimit?: RateLimit | null } = {};
  try {
    if (flags.concurrency !== undefined) {
      // The text itself is named in the error ("abc", not NaN); 0x10 or 1e3 are not counts either.
      const text = flags.concurrency.trim();
      if (text !== 'none' && !/^-?\d+(\.\d+)?$/.test(text)) {
        throw new UsageError(`Invalid --concurrency: ${JSON.stringify(flags.concurrency)} — expected a whole number of tasks >= 1, or none`);
      }
      limits.concurrency = text === 'none' ? null : checkLimitCount(Number(text), '--concurrency');
    }
    if (flags.rate !== undefined) {
      limits.rateLimit = flags.rate === 'none' ? null : { ...parseRateLimit(flags.rate, '--rate'), ...(flags.ratePerKey ? { perKey: true } : {}) };
    }
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (flags.ratePerKey && flags.rate === undefined) throw new UsageError('Invalid --rate-per-key: it qualifies --rate — give --rate LIMIT/SECONDS with it');
  if (Object.keys(limits).length === 0) throw new UsageError('Nothing to set — give --concurrency N|none and/or --rate LIMIT/SECONDS|none');
  const { store } = await openStore(flags);
  await setQueueLimits(store, queue, limits, by(), currentClock().now());
  const q = (await queueOverview(store, currentClock().now())).find((x) => x.name === queue)!;
  line(`Queue ${queue}: concurrency ${q.concurrency ?? 'unlimited'}, rate ${q.rateLimit ? rateText(q.rateLimit) : 'unlimited'}.`);
  return EXIT.OK;
}

/**
 * `bgtasks retry ID… | --failed [--since …] [--queue …] [--name …]`: enqueue each FAILED task
 * again as a new pending task (same call, attempts 0, due now). The failed record stays.
 */
import { currentClock } from '../../core/base/clock.js';
import { failedByIds, findFailed, maxCompletedId, retryFailed, type RetryOutcome } from '../../core/store/admin.js';
import { numberFlag, UsageError } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { json, line } from '../format.js';
import { parseIds, parseList, parseSince } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export interface RetryFlags extends StoreFlags {
  failed?: boolean;
  since?: string;
  queue?: string;
  name?: string;
  limit?: string;
}

/** Failed tasks copied per transaction with --failed. */
const PAGE = 500;

export async function retryCommand(rawIds: string[], flags: RetryFlags): Promise<number> {
  const now = currentClock().now();
  const byFilter = flags.since !== undefined || flags.queue !== undefined || flags.name !== undefined || flags.limit !== undefined;
  if (rawIds.length > 0 && (flags.failed || byFilter)) {
    throw new UsageError('Pass either task ids or --failed (with --since, --queue, --name, --limit), not both');
  }
  if (rawIds.length === 0 && !flags.failed) {
    throw new UsageError(byFilter ? '--since, --queue, --name and --limit select among failed tasks: add --failed' : 'Missing task id(s) or --failed — e.g. `bgtasks retry 42 43` or `bgtasks retry --failed --since 3600`');
  }
  let outcomes: RetryOutcome[];
  if (rawIds.length > 0) {
    const ids = parseIds(rawIds);
    const { store } = await openStore(flags);
    // Every id is checked before anything is written; then all copies go in one transaction.
    outcomes = await retryFailed(store, await failedByIds(store, ids, now), now);
  } else {
    const sinceMs = parseSince(flags.since, now);
    const queues = parseList(flags.queue, '--queue', 'queue names');
    const names = parseList(flags.name, '--name', 'task names');
    const limit = numberFlag(flags.limit, '--limit', 'an integer >= 1', (n) => Number.isInteger(n) && n >= 1) ?? Infinity;
    const { store } = await openStore(flags);
    // Only tasks that had failed when the command started: copies that fail again meanwhile
    // land above this id and are not retried in the same run.
    const upToId = await maxCompletedId(store);
    outcomes = [];
    let afterId: string | null = null;
    while (upToId !== null && outcomes.length < limit) {
      const page = await findFailed(store, { sinceMs, queues, names, afterId, upToId, limit: Math.min(PAGE, limit - outcomes.length) });
      if (page.length === 0) break;
      outcomes.push(...(await retryFailed(store, page, now)));
      afterId = page[page.length - 1]!.taskId;
    }
  }
  if (flags.json) {
    json({ retried: outcomes });
    return EXIT.OK;
  }
  if (outcomes.length === 0) line('No failed tasks matched; nothing was retried.');
  for (const o of outcomes) line(`Retried ${o.name} #${o.id} as #${o.newId}`);
  if (outcomes.length > 1) line(`Retried ${outcomes.length} task(s)`);
  return EXIT.OK;
}

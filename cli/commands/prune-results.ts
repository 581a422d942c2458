/** `bgtasks prune-results`: delete old task results in small batches, so the queue keeps running. */
import { currentClock } from '../../core/base/clock.js';
import { PRUNE_BATCH_DEFAULT, PRUNE_BATCH_MAX, pruneResults } from '../../core/store/prune.js';
import { numberFlag } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { json, line, Progress } from '../format.js';
import { parseList } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export interface PruneFlags extends StoreFlags {
  days?: string;
  failedDays?: string;
  queue?: string;
  dryRun?: boolean;
  batchSize?: string;
}

/** Deletes at or above this many rows draw a progress line (on a terminal). */
const PROGRESS_FROM = 10_000;

export async function pruneResultsCommand(flags: PruneFlags): Promise<number> {
  const days = numberFlag(flags.days ?? '30', '--days', 'a number of days >= 0', (n) => n >= 0)!;
  const failedDays = numberFlag(flags.failedDays, '--failed-days', 'a number of days >= 0 (0 = prune every failed task)', (n) => n >= 0);
  const batchSize = numberFlag(
    flags.batchSize,
    '--batch-size',
    `an integer from 1 to ${PRUNE_BATCH_MAX}`,
    (n) => Number.isInteger(n) && n >= 1 && n <= PRUNE_BATCH_MAX,
  );
  const queues = parseList(flags.queue, '--queue', 'queue names');
  const { store } = await openStore(flags);
  let progress: Progress | null = null;
  const report = await pruneResults(store, {
    days,
    failedDays: failedDays ?? null,
    queues,
    nowMs: currentClock().now(),
    batchSize: batchSize ?? PRUNE_BATCH_DEFAULT,
    dryRun: flags.dryRun === true,
    onProgress: (deleted, total) => {
      if (total < PROGRESS_FROM) return;
      progress ??= new Progress('Deleting task results:', total);
      progress.update(deleted);
    },
  });
  (progress as Progress | null)?.finish();
  if (flags.json) {
    json(report);
    return EXIT.OK;
  }
  const verb = report.dryRun ? 'Would delete' : 'Deleted';
  line(`${verb} ${report.tasks} task result(s)`);
  if (report.locks > 0) line(`${verb} ${report.locks} unused lock row(s)`);
  return EXIT.OK;
}

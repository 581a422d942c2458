/**
 * `bgtasks run-now ID…`: a READY task whose run time is still ahead (scheduled for later, or
 * waiting out a retry's backoff) becomes due now. One already due is left as it is; a RUNNING or
 * finished task is reported and left as it is. Unknown ids are refused before anything changes.
 */
import { currentClock } from '../../core/base/clock.js';
import { notFound } from '../../core/store/admin.js';
import { runTaskNow, type RunNowResult } from '../../core/store/run-now.js';
import { EXIT } from '../exit-codes.js';
import { iso, json, line } from '../format.js';
import { parseIds } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

function describe(r: RunNowResult): string {
  switch (r.outcome) {
    case 'movedToNow':
      return `due now (run time moved to ${iso(r.runAt)})`;
    case 'alreadyDue':
      return `already due (run time ${iso(r.runAt)}); left as it is`;
    case 'notReady':
      return `${(r.status ?? '').toLowerCase()}, not ready; left as it is`;
    case 'changedMeanwhile':
      return 'changed while being moved (claimed or rescheduled meanwhile); left as it is — check and run the command again';
    case 'notFound':
      return 'not found';
  }
}

export async function runNowCommand(rawIds: string[], flags: StoreFlags): Promise<number> {
  const ids = parseIds(rawIds);
  const { store } = await openStore(flags);
  for (const id of ids) {
    if (!(await store.findPending(id)) && !(await store.findCompleted(id))) throw notFound(store, id);
  }
  const results: RunNowResult[] = [];
  for (const id of ids) results.push(await runTaskNow(store, id, currentClock().now()));
  if (flags.json) {
    json({ results: results.map((r) => ({ ...r, runAt: r.runAt === null ? null : new Date(r.runAt) })) });
    return EXIT.OK;
  }
  for (const r of results) line(`${r.name ?? '?'} #${r.id}: ${describe(r)}`);
  return EXIT.OK;
}

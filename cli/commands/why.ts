/**
 * `bgtasks why ID`: every reason a task is not running now (store/why.ts reads what the claim
 * reads; policy/why.ts names the reasons). Exit 0 when it is runnable (or running) now, 1 when
 * something holds it back, 2 for an unknown id.
 */
import { currentClock } from '../../core/base/clock.js';
import { explain } from '../../core/policy/why.js';
import { whyFacts } from '../../core/store/why.js';
import { EXIT } from '../exit-codes.js';
import { json, line } from '../format.js';
import { parseIds } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export async function whyCommand(id: string, flags: StoreFlags): Promise<number> {
  const [taskId] = parseIds([id]);
  const { settings, store } = await openStore(flags);
  const answer = explain(await whyFacts(store, taskId!, currentClock().now(), settings));
  if (flags.json) {
    json(answer);
  } else {
    line(`Task ${answer.name} #${answer.id} is ${answer.status}${stateNote(answer.status, answer.runnable)}.`);
    for (const r of answer.reasons) line(`- ${r.message}`);
    if (answer.reasons.length === 0) line('- nothing holds it back: a worker claims it at its next poll.');
  }
  return answer.runnable ? EXIT.OK : EXIT.FAILURE;
}

/** What follows the status: a finished task is not held back, it is done. */
function stateNote(status: string, runnable: boolean): string {
  if (status === 'SUCCESSFUL' || status === 'FAILED') return '';
  if (!runnable) return ' and is held back';
  return status === 'RUNNING' ? '' : ' and can run now';
}

/**
 * `explain(id)`: why a task is not running now. It reads what the claim reads (store/why.ts) and
 * names every reason (policy/why.ts): not due, its queue paused, a full concurrency limit and the
 * tasks holding it, a rate window and when it reopens, tasks ahead of it, no live worker for it, a
 * worker's lease, a run budget, its attempts, its expiry. `bgtasks why ID` prints the same.
 */
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import { explain as explainFacts, type WhyAnswer } from '../policy/why.js';
import { reachableStore } from '../store/open.js';
import { whyFacts } from '../store/why.js';
import type { TaskRef } from '../types.js';
import { checkTaskId } from './handle.js';

export type { WhyAnswer, WhyReason, WhyCode } from '../policy/why.js';

export async function explain(idOrRef: string | number | Pick<TaskRef, 'id'>, options: { connection?: string } = {}): Promise<WhyAnswer> {
  const id = checkTaskId(typeof idOrRef === 'object' && idOrRef !== null ? idOrRef.id : idOrRef);
  const settings = await getSettings();
  const store = await reachableStore(settings, options.connection);
  return explainFacts(await whyFacts(store, id, currentClock().now(), settings));
}

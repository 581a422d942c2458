/** `bgtasks delete ID… [--force]`: delete pending or finished tasks; a RUNNING one only with --force. */
import { currentClock } from '../../core/base/clock.js';
import { deleteTasks, planDelete } from '../../core/store/admin.js';
import { EXIT } from '../exit-codes.js';
import { json, line, statusLabel } from '../format.js';
import { parseIds } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export interface DeleteFlags extends StoreFlags {
  force?: boolean;
}

export async function deleteCommand(rawIds: string[], flags: DeleteFlags): Promise<number> {
  const ids = parseIds(rawIds);
  const { store } = await openStore(flags);
  const now = currentClock().now();
  const force = flags.force === true;
  // Every id is checked first (unknown, or RUNNING without --force: nothing is deleted).
  const plan = await planDelete(store, ids, now, force);
  await deleteTasks(store, plan, now, force);
  if (flags.json) {
    json({ deleted: plan.map((p) => ({ id: p.id, name: p.name, status: p.status })) });
    return EXIT.OK;
  }
  for (const p of plan) line(`Deleted ${p.name} #${p.id} (was ${statusLabel(p.status)})`);
  return EXIT.OK;
}

/**
 * The dashboard's actions on a database: each task goes through the store verb the CLI and the
 * API use (retry.ts's copy, cancelTask, planDelete/deleteTasks, runTaskNow), and each verb's
 * result or refusal becomes an ActionItem. An action on a filter takes the matching ids in
 * bounded chunks (id order, up to the highest id when it started, so later arrivals are left
 * out) and acts on each as on a listed id: every change stays guarded by the state it read.
 */
import { isTaskIdText } from '../base/task-id.js';
import { isErrorKind } from '../errors.js';
import { pendingStatus } from '../policy/status.js';
import { planDelete, deleteTasks, retryFailed, TaskChangedError } from '../store/admin.js';
import { cancelTask } from '../store/cancel.js';
import { runTaskNow } from '../store/run-now.js';
import type { Store } from '../store/store.js';
import { matchingIds, maxTaskId } from '../store/task-pages.js';
import type { Status } from '../types.js';
import { pageFilterOf } from './database-filter.js';
import type { ActionItem, ActionOutcome, ActionResult, ActionTarget, TaskAction } from './source.js';

/** Tasks read and acted on per round of an action on a filter. */
export const ACTION_CHUNK = 200;
/** Items kept in a result (the counts cover all). */
export const ITEMS_KEPT = 200;

const CHANGES: ReadonlySet<ActionOutcome> = new Set(['retried', 'cancelled', 'cancelRequested', 'deleted', 'movedToNow']);

const item = (id: string, name: string | null, outcome: ActionOutcome, before: Status | null, after: Status | null, newId: string | null = null): ActionItem => ({
  id,
  name,
  outcome,
  before,
  after,
  newId,
});

/** Where a task is now, for the refusals. */
async function statusNow(store: Store, id: string, nowMs: number): Promise<{ name: string; status: Status } | null> {
  const p = await store.retrying(() => store.findPending(id));
  if (p) return { name: p.name, status: pendingStatus(p, nowMs) };
  const c = await store.retrying(() => store.findCompleted(id));
  return c ? { name: c.name, status: c.failedAt === null ? 'SUCCESSFUL' : 'FAILED' } : null;
}

async function retryOne(store: Store, id: string, nowMs: number): Promise<ActionItem> {
  const c = await store.retrying(() => store.findCompleted(id));
  if (!c || c.failedAt === null) {
    const s = await statusNow(store, id, nowMs);
    return s ? item(id, s.name, 'wrongStatus', s.status, s.status) : item(id, null, 'notFound', null, null);
  }
  const [r] = await retryFailed(store, [c], nowMs);
  return item(id, c.name, 'retried', 'FAILED', 'FAILED', r!.newId);
}

async function cancelOne(store: Store, id: string, nowMs: number): Promise<ActionItem> {
  const p = await store.retrying(() => store.findPending(id));
  if (!p) {
    const s = await statusNow(store, id, nowMs);
    return s ? item(id, s.name, 'wrongStatus', s.status, s.status) : item(id, null, 'notFound', null, null);
  }
  const before = pendingStatus(p, nowMs);
  if (before === 'RUNNING' && p.cancelRequested) return item(id, p.name, 'unchanged', before, before);
  try {
    const o = await cancelTask(store, id);
    return o.status === 'FAILED' ? item(id, p.name, 'cancelled', before, 'FAILED') : item(id, p.name, 'cancelRequested', before, 'RUNNING');
  } catch (err) {
    // It finished or was deleted between the read and the guarded write.
    if (isErrorKind(err, 'ValidationError') || isErrorKind(err, 'TaskNotFoundError')) {
      const s = await statusNow(store, id, nowMs);
      return item(id, p.name, 'changedMeanwhile', before, s?.status ?? null);
    }
    throw err;
  }
}

async function deleteOne(store: Store, id: string, nowMs: number): Promise<ActionItem> {
  let plan;
  try {
    plan = await planDelete(store, [id], nowMs, false);
  } catch (err) {
    if (isErrorKind(err, 'TaskNotFoundError')) return item(id, null, 'notFound', null, null);
    if (isErrorKind(err, 'ValidationError')) {
      const s = await statusNow(store, id, nowMs);
      return item(id, s?.name ?? null, 'wrongStatus', s?.status ?? null, s?.status ?? null);
    }
    throw err;
  }
  const p = plan[0]!;
  try {
    await deleteTasks(store, plan, nowMs, false);
    return item(id, p.name, 'deleted', p.status, null);
  } catch (err) {
    if (!(err instanceof TaskChangedError)) throw err;
    const s = await statusNow(store, id, nowMs);
    return item(id, p.name, 'changedMeanwhile', p.status, s?.status ?? null);
  }
}

async function runNowOne(store: Store, id: string, nowMs: number): Promise<ActionItem> {
  const r = await runTaskNow(store, id, nowMs);
  switch (r.outcome) {
    case 'movedToNow':
      return item(id, r.name, 'movedToNow', 'READY', 'READY');
    case 'alreadyDue':
      return item(id, r.name, 'unchanged', 'READY', 'READY');
    case 'notReady':
      return item(id, r.name, 'wrongStatus', r.status, r.status);
    case 'notFound':
      return item(id, null, 'notFound', null, null);
    case 'changedMeanwhile': {
      const s = await statusNow(store, id, nowMs);
      return item(id, r.name, 'changedMeanwhile', 'READY', s?.status ?? null);
    }
  }
}

const VERBS: Record<TaskAction, (store: Store, id: string, nowMs: number) => Promise<ActionItem>> = {
  retry: retryOne,
  cancel: cancelOne,
  delete: deleteOne,
  runNow: runNowOne,
};

/** Runs `action` on the target's tasks and reports what became of each. */
export async function actOn(store: Store, action: TaskAction, target: ActionTarget, now: () => number): Promise<ActionResult> {
  const result: ActionResult = { action, changed: 0, unchanged: 0, refused: 0, items: [], itemsOmitted: 0 };
  const record = (i: ActionItem) => {
    if (CHANGES.has(i.outcome)) result.changed++;
    else if (i.outcome === 'unchanged') result.unchanged++;
    else result.refused++;
    if (result.items.length < ITEMS_KEPT) result.items.push(i);
    else result.itemsOmitted++;
  };
  const verb = VERBS[action];
  if ('ids' in target) {
    const ids = [...new Set(target.ids)].sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
    for (const id of ids) {
      if (!isTaskIdText(id)) record(item(id, null, 'notFound', null, null));
      else record(await verb(store, id, now()));
    }
    return result;
  }
  const upTo = await maxTaskId(store);
  if (upTo === null) return result;
  const filter = { ...pageFilterOf(target.filter), upToId: upTo };
  let after: string | null = null;
  for (;;) {
    const ids = await matchingIds(store, filter, after, ACTION_CHUNK, now());
    if (ids.length === 0) return result;
    for (const id of ids) record(await verb(store, id, now()));
    after = ids[ids.length - 1]!;
  }
}

/**
 * `bgtasks cancel ID…`: a READY task becomes FAILED (cancelled) now; a RUNNING one gets a cancel
 * request that its worker acts on at its next heartbeat. A task that already finished is
 * reported and left as it is.
 */
import { cancelTask } from '../../core/store/cancel.js';
import { isErrorKind } from '../../core/errors.js';
import { notFound } from '../../core/store/admin.js';
import type { Store } from '../../core/store/store.js';
import { EXIT } from '../exit-codes.js';
import { json, line } from '../format.js';
import { parseIds } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

type Outcome = 'cancelled' | 'requested' | 'finished';

interface CancelResult {
  id: string;
  name: string;
  /** The status after the command. */
  status: string;
  outcome: Outcome;
}

async function statusOfFinished(store: Store, id: string): Promise<{ name: string; status: string } | null> {
  const done = await store.findCompleted(id);
  return done ? { name: done.name, status: done.failedAt === null ? 'SUCCESSFUL' : 'FAILED' } : null;
}

export async function cancelCommand(rawIds: string[], flags: StoreFlags): Promise<number> {
  const ids = parseIds(rawIds);
  const { store } = await openStore(flags);
  // Unknown ids are refused before anything is cancelled.
  const names = new Map<string, string>();
  const finished = new Map<string, { name: string; status: string }>();
  for (const id of ids) {
    const pending = await store.findPending(id);
    if (pending) {
      names.set(id, pending.name);
      continue;
    }
    const done = await statusOfFinished(store, id);
    if (!done) throw notFound(store, id);
    finished.set(id, done);
  }
  const results: CancelResult[] = [];
  for (const id of ids) {
    const done = finished.get(id);
    if (done) {
      results.push({ id, name: done.name, status: done.status, outcome: 'finished' });
      continue;
    }
    try {
      const o = await cancelTask(store, id);
      results.push({ id, name: names.get(id)!, status: o.status, outcome: o.status === 'FAILED' ? 'cancelled' : 'requested' });
    } catch (err) {
      // It finished between the check and the cancel: report it like one that had finished before.
      if (!isErrorKind(err, 'ValidationError')) throw err;
      const now = await statusOfFinished(store, id);
      if (!now) throw err;
      results.push({ id, name: now.name, status: now.status, outcome: 'finished' });
    }
  }
  if (flags.json) {
    json({ results });
    return EXIT.OK;
  }
  for (const r of results) {
    const what =
      r.outcome === 'cancelled'
        ? 'cancelled (now failed)'
        : r.outcome === 'requested'
          ? 'running: cancel requested; its worker aborts it at its next heartbeat and records it failed'
          : `already finished (${r.status.toLowerCase()}); left as it is`;
    line(`${r.name} #${r.id}: ${what}`);
  }
  return EXIT.OK;
}

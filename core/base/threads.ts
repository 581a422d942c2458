/**
 * Who wants to know while a thread bgtasks starts is coming up. V8 resets a heap setting of the
 * whole process whenever it makes a thread's isolate (the young generation's growth factor goes
 * back to 2), at some moment between the start of the thread and its `online` event. The CLI's
 * young-generation keeper (cli/young-generation.ts) sets its own factor again meanwhile, on every
 * turn of the event loop: a collection that ran between the reset and the keeper's next look
 * could grow the young generation to 32 MiB.
 */
import type { Worker } from 'node:worker_threads';
import { processWide } from './global.js';

const listeners = processWide('threadStartListeners', () => new Set<() => void>());

/** Longest a thread is waited for: one that never comes online is no longer watched after this. */
const WATCH_MS = 10_000;

/**
 * Calls `fn` on every turn of the event loop while a thread bgtasks started is coming up (from
 * its start to its `online` event, its exit or WATCH_MS); returns the function that stops it.
 */
export function whileThreadsStart(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Watches `thread`, just started, until it is online. A listener that throws changes nothing. */
export function threadStarting(thread: Worker): void {
  if (listeners.size === 0) return;
  let up = false;
  const done = () => (up = true);
  thread.once('online', done);
  thread.once('exit', done);
  const until = Date.now() + WATCH_MS;
  const turn = () => {
    for (const fn of listeners) {
      try {
        fn();
      } catch {
        // A heap setting that could not be applied again leaves V8's own: nothing to undo.
      }
    }
    if (up || Date.now() > until) {
      thread.off('online', done);
      thread.off('exit', done);
      return;
    }
    setImmediate(turn).unref();
  };
  turn();
}

/**
 * Who wants to know when a thread bgtasks started has come online. V8 resets some heap settings
 * of the whole process whenever it makes a thread's isolate (the young generation's growth factor
 * goes back to 2), so the CLI's young-generation keeper (cli/young-generation.ts) sets its own
 * again then, instead of waiting for the next collection, which might grow the young generation
 * first.
 */
import { processWide } from './global.js';

const listeners = processWide('threadOnlineListeners', () => new Set<() => void>());

/** Calls `fn` each time a thread bgtasks started comes online; returns the function that stops it. */
export function onThreadOnline(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Tells the listeners that a thread came online. A listener that throws changes nothing. */
export function threadOnline(): void {
  for (const fn of listeners) {
    try {
      fn();
    } catch {
      // A heap setting that could not be applied again leaves V8's own: nothing to undo.
    }
  }
}

/**
 * The liveness beat (docs/reliability.md#a-dead-worker-anywhere-found-in-seconds): a worker's
 * registry row carries `alive_at`, written every few seconds from a thread of its own, so the
 * beat goes on while a task blocks the worker's event loop. A row whose beat stopped for longer
 * than its `livenessTimeout` means the process is dead, stopped, or cut off from the database,
 * and any worker, on any host, may recover its RUNNING tasks before their lease runs out.
 *
 * Three durations follow from the timeout T (12 s by default), all measured from the moment a
 * beat that landed was sent:
 *  - the beat is sent every T/6, at most every 2 s;
 *  - the worker itself stops its running attempts once none of its beats has landed for 2T/3
 *    (the fence): it may be cut off, and the others may take its tasks at T. The T/3 between
 *    the two covers the clocks of two workers (within about 2 s of each other, see Clocks) and
 *    the fence's own check;
 *  - a worker judges another silent only after its own beats have landed for a whole T with no
 *    gap longer than T/3: a database that stalled (or was away) for everyone stopped every beat,
 *    and must not make the live workers look dead when it answers again.
 * The rule's SQL form is store/dead-workers.ts (silentWorkerIds).
 */
import { deadWorkerAfterMs } from './status.js';

/** Seconds: the default `livenessTimeout`. */
export const DEFAULT_LIVENESS_TIMEOUT = 12;
/** Seconds: the shortest `livenessTimeout` (0 turns the beat off). T/3 must exceed the clocks' ~2 s. */
export const MIN_LIVENESS_TIMEOUT = 9;

/** How often the liveness beat is sent. */
export function livenessBeatMs(timeoutMs: number): number {
  return Math.min(2000, Math.round(timeoutMs / 6));
}

/** How long without a landed beat before a worker stops its own running attempts. */
export function livenessFenceMs(timeoutMs: number): number {
  return Math.round((timeoutMs * 2) / 3);
}

/** The longest gap between landed beats that still counts as a database answering throughout. */
export function livenessGapMs(timeoutMs: number): number {
  return Math.round(timeoutMs / 3);
}

/** What the silence rule reads of a registry row. */
export interface LivenessRow {
  /** When its last liveness beat that landed was sent (its worker's clock); null: no beat. */
  aliveAt: number | null;
  /** Its livenessTimeout in ms; null: no beat (turned off, or a worker of an older version). */
  livenessMs: number | null;
  /** Its registry heartbeat (sent from its event loop), and that heartbeat's interval. */
  heartbeatAt: number;
  heartbeatMs: number;
}

/**
 * True when the worker is silent at `nowMs`: it has a liveness beat, and both that beat and its
 * registry heartbeat stopped for longer than their bounds. The heartbeat too: a worker of an
 * older version that took over a worker id keeps beating its heartbeat, never `alive_at`. A row
 * without a beat is never silent: its tasks wait for their lease (or DEADWORKER-01's check).
 */
export function isSilent(w: LivenessRow, nowMs: number): boolean {
  if (w.aliveAt === null || w.livenessMs === null) return false;
  return w.aliveAt + w.livenessMs < nowMs && w.heartbeatAt + deadWorkerAfterMs(w.heartbeatMs) < nowMs;
}

/**
 * Whether this worker may judge a worker whose bound is `theirMs` silent: only when its own beats
 * have landed without a long gap for at least that long (`continuousMs`, 0 without a beat).
 */
export function mayJudgeSilence(continuousMs: number, theirMs: number): boolean {
  return continuousMs > 0 && continuousMs >= theirMs;
}

/**
 * The one rule that turns a pending row into a status: RUNNING means claimed under a live lease;
 * anything else in the pending table is READY, including a claimed task whose lease ran out (its
 * worker died or stalled, and the task is about to be recovered). Its SQL form is
 * store/status-sql.ts; the two must say the same.
 */
import type { Status } from '../types.js';

/** What the rule reads of a pending row. */
export interface LeaseState {
  lockedBy: string | null;
  lockedUntil: number | null;
}

/** True while a worker holds the task under a lease that has not run out at `nowMs`. */
export function hasLiveLease(t: LeaseState, nowMs: number): boolean {
  return t.lockedBy !== null && t.lockedUntil !== null && t.lockedUntil > nowMs;
}

/** The status of a row of the pending table at `nowMs`: RUNNING only under a live lease. */
export function pendingStatus(t: LeaseState, nowMs: number): Extract<Status, 'READY' | 'RUNNING'> {
  return hasLiveLease(t, nowMs) ? 'RUNNING' : 'READY';
}

/** A worker's registry row as the liveness rule reads it. */
export interface WorkerBeat {
  heartbeatAt: number;
  /** Its heartbeat interval. */
  heartbeatMs: number;
  stoppedAt: number | null;
  /** Its last liveness beat (sent from a thread of its own) and its livenessTimeout; null or absent: no beat. */
  aliveAt?: number | null;
  livenessMs?: number | null;
}

/** Heartbeats a worker may miss before it counts as lost (a slow beat is not a dead worker). */
export const WORKER_MISSED_BEATS = 3;

export type WorkerState = 'alive' | 'blocked' | 'stopped' | 'lost';

/**
 * `alive` while its heartbeats arrive, `stopped` after a clean stop, `lost` once it missed
 * WORKER_MISSED_BEATS beats without saying goodbye (killed, or cut off from the database).
 * `blocked` between the two: its heartbeat (sent from its event loop) stopped but its liveness
 * beat (sent from a thread) still lands, so the process lives and its event loop does not turn:
 * a task running synchronous code, a long garbage collection. Its tasks are not recovered early
 * (policy/liveness.ts isSilent), and it claims again once the loop turns.
 */
export function workerState(w: WorkerBeat, nowMs: number): WorkerState {
  if (w.stoppedAt !== null) return 'stopped';
  if (w.heartbeatAt + WORKER_MISSED_BEATS * w.heartbeatMs > nowMs) return 'alive';
  const beat = w.aliveAt ?? null;
  const bound = w.livenessMs ?? null;
  return beat !== null && bound !== null && beat + bound > nowMs ? 'blocked' : 'lost';
}

/** A worker that lives: its heartbeat arrives, or only its event loop is blocked. */
export function isLiveState(state: WorkerState): boolean {
  return state === 'alive' || state === 'blocked';
}

/**
 * How often a worker writes its registry heartbeat: its lease heartbeat, but at least every 3 s,
 * so that a dead worker's row goes stale within seconds while leases stay long.
 */
export function registryBeatMs(heartbeatMs: number): number {
  return Math.min(heartbeatMs, 3000);
}

/** Below this, a missed registry beat is more likely a slow database than a dead process. */
export const DEAD_WORKER_FLOOR_MS = 8000;

/**
 * How long after its last registry heartbeat a worker's RUNNING tasks may be recovered before
 * their lease runs out (when its process is also known to be gone; see worker/maintenance.ts):
 * WORKER_MISSED_BEATS registry beats, and never less than DEAD_WORKER_FLOOR_MS. With the defaults
 * (10 s heartbeat, so 3 s registry beats) this is 9 s. store/workers.ts has its SQL form.
 */
export function deadWorkerAfterMs(beatMs: number): number {
  return Math.max(WORKER_MISSED_BEATS * beatMs, DEAD_WORKER_FLOOR_MS);
}

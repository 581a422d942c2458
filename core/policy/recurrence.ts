/**
 * Next-run computation for recurring tasks. A successor is always computed from the task's
 * scheduled slot, never from a run time that retries have shifted (the reference's drift bug
 * #251), and missed slots are skipped, not replayed.
 */
import { nextCronSlot } from './cron.js';

export interface Recurrence {
  /** Milliseconds between slots; 0 when the recurrence is a cron rule or there is none. */
  everyMs: number;
  cron: string | null;
  timezone: string | null;
  /** No successor at or after this time (epoch ms). */
  untilMs: number | null;
}

export function isRecurring(r: Recurrence): boolean {
  return r.everyMs > 0 || r.cron !== null;
}

/**
 * The first slot after `slotMs` that is not before `nowMs` (the reference advances while the
 * candidate is strictly earlier than now), or null when the recurrence has ended.
 */
export function nextSlot(r: Recurrence, slotMs: number, nowMs: number): number | null {
  let next: number;
  if (r.everyMs > 0) {
    next = slotMs + r.everyMs;
    if (next < nowMs) {
      // Skip the missed slots in one step: the same result as adding `everyMs` until not past.
      const missed = Math.ceil((nowMs - next) / r.everyMs);
      next += missed * r.everyMs;
    }
  } else if (r.cron !== null) {
    next = nextCronSlot(r.cron, r.timezone ?? 'UTC', Math.max(slotMs, nowMs - 1));
  } else {
    return null;
  }
  if (r.untilMs !== null && next >= r.untilMs) return null;
  return next;
}

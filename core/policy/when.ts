/**
 * Run-time resolution for `schedule(when)` and a definition's default `schedule`. Relative values
 * are resolved at call time. `0` means now (the reference ignored 0, a bug).
 */
import { ValidationError } from '../errors.js';
import type { DurationObject, When } from '../types.js';

/**
 * The times a task may carry: 0000-01-01 to 9999-12-31 (UTC), the years ISO 8601 writes with four
 * digits. Times are stored as epoch milliseconds in BIGINT columns and read back as JavaScript
 * Dates (at most ±8.64e15 ms); keeping every time, and every span added to one, within ±2.6e14 ms
 * leaves their sums valid Dates and exact integers.
 */
export const MIN_TIME_MS = Date.parse('0000-01-01T00:00:00.000Z');
export const MAX_TIME_MS = Date.parse('9999-12-31T23:59:59.999Z');
/** The longest span (seconds) a delay, repeat or expiry may have: from 1970 to the last time. */
export const MAX_SPAN_SECONDS = Math.floor(MAX_TIME_MS / 1000);

export const TIME_RANGE = 'between 0000-01-01 and 9999-12-31 (UTC)';

/** Whether epoch ms `ms` is a time a task may carry. */
export function inTimeRange(ms: number): boolean {
  return Number.isFinite(ms) && ms >= MIN_TIME_MS && ms <= MAX_TIME_MS;
}

const UNIT_MS: Record<keyof DurationObject, number> = {
  seconds: 1000,
  minutes: 60_000,
  hours: 3_600_000,
  days: 86_400_000,
  weeks: 604_800_000,
};

/** Checks a `when` value; returns it unchanged or throws a ValidationError naming `label`. */
export function checkWhen(when: unknown, label: string): When | undefined {
  if (when === undefined) return undefined;
  if (typeof when === 'number') {
    if (!Number.isFinite(when) || when < 0 || when > MAX_SPAN_SECONDS) {
      throw new ValidationError(
        `Invalid ${label}: ${String(when)} — expected seconds from now (a finite number >= 0 and <= ${MAX_SPAN_SECONDS}, so the time is ${TIME_RANGE}), a Date, or a duration object`,
      );
    }
    return when;
  }
  if (when instanceof Date) {
    if (Number.isNaN(when.getTime())) throw new ValidationError(`Invalid ${label}: an Invalid Date — expected a valid Date`);
    if (!inTimeRange(when.getTime())) throw new ValidationError(`Invalid ${label}: ${when.toISOString()} — expected a Date ${TIME_RANGE}`);
    return when;
  }
  if (typeof when === 'object' && when !== null && !Array.isArray(when)) {
    const keys = Object.keys(when);
    for (const k of keys) {
      if (!(k in UNIT_MS)) {
        throw new ValidationError(`Invalid ${label}: unknown duration field "${k}" — expected seconds, minutes, hours, days or weeks`);
      }
      const v = (when as Record<string, unknown>)[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        throw new ValidationError(`Invalid ${label}: ${k} is ${JSON.stringify(v)} — expected a finite number >= 0`);
      }
    }
    const ms = durationMs(when as DurationObject);
    if (ms > MAX_SPAN_SECONDS * 1000) {
      throw new ValidationError(`Invalid ${label}: a duration of ${ms / 1000} seconds — expected at most ${MAX_SPAN_SECONDS}, so the time is ${TIME_RANGE}`);
    }
    return when as DurationObject;
  }
  throw new ValidationError(`Invalid ${label}: ${typeof when} — expected seconds from now (a number >= 0), a Date, or a duration object such as { minutes: 5 }`);
}

/** Milliseconds in a duration object. */
export function durationMs(d: DurationObject): number {
  let ms = 0;
  for (const [k, v] of Object.entries(d)) ms += (v as number) * UNIT_MS[k as keyof DurationObject];
  return ms;
}

/**
 * The epoch ms a `when` stands for at `nowMs`. A relative `when` that lands after 9999-12-31 is a
 * ValidationError: stored, it would read back as no time at all.
 */
export function resolveWhen(when: When | undefined, nowMs: number): number {
  let ms: number;
  if (when === undefined) ms = nowMs;
  else if (typeof when === 'number') ms = nowMs + Math.round(when * 1000);
  else if (when instanceof Date) ms = when.getTime();
  else ms = nowMs + Math.round(durationMs(when));
  if (!inTimeRange(ms)) {
    const shown = typeof when === 'number' ? `${when} seconds from now` : Number.isFinite(ms) ? `${ms} ms since 1970` : String(ms);
    throw new ValidationError(`Invalid when: ${shown} — expected a time ${TIME_RANGE}`);
  }
  return ms;
}

/**
 * Run-time resolution for `schedule(when)` and a definition's default `schedule`. Relative values
 * are resolved at call time. `0` means now (the reference ignored 0, a bug).
 */
import { ValidationError } from '../errors.js';
import type { DurationObject, When } from '../types.js';

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
    if (!Number.isFinite(when) || when < 0) {
      throw new ValidationError(`Invalid ${label}: ${String(when)} — expected seconds from now (a finite number >= 0), a Date, or a duration object`);
    }
    return when;
  }
  if (when instanceof Date) {
    if (Number.isNaN(when.getTime())) throw new ValidationError(`Invalid ${label}: an Invalid Date — expected a valid Date`);
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

/** The epoch ms a `when` stands for at `nowMs`. */
export function resolveWhen(when: When | undefined, nowMs: number): number {
  if (when === undefined) return nowMs;
  if (typeof when === 'number') return nowMs + Math.round(when * 1000);
  if (when instanceof Date) return when.getTime();
  return nowMs + Math.round(durationMs(when));
}

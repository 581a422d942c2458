/**
 * Cron slots in an IANA time zone, following classic (Vixie) cron around clock changes
 * (DECISIONS.md, "Recurrences and time zones").
 *
 * cron-parser is only asked which wall-clock times match: it runs in UTC on a timeline that stands
 * for the zone's wall clock ("wall time", where clocks never change). Turning wall times back into
 * real instants is done here, because cron-parser's own DST handling is not Vixie's: in a
 * spring-forward gap it moves `30 2 * * *` to 03:30 instead of the gap end and runs `0,30 2 * * *`
 * twice, and on a fall-back night it drops the repeated 02:30 of `30 *\/2 * * *`.
 *
 * Like Vixie cron, jobs split in two by their hour field:
 * - wildcard hours (`*`, `*\/2`) run at every real instant whose wall-clock reading matches. Times
 *   in a gap are never shown, so they do not run; times in an overlap are shown twice, at two real
 *   instants, so they run twice. `0 * * * *` therefore runs once per elapsed hour, with no gap and
 *   no duplicate.
 * - any other hour field names fixed times of day. Each matching wall time runs once, at the first
 *   real instant the clock reads it or later: a time in a gap runs at the gap end (several of them
 *   run once, together), and a time in an overlap runs at its first occurrence only.
 *
 * Offsets come from Intl, so nothing depends on the process's own TZ.
 */
import type { CronExpression } from 'cron-parser';
import { cronFields, cronParser } from './cron-check.js';

const DAY_MS = 86_400_000;

/** The first slot strictly after `afterMs` (epoch ms). */
export function nextCronSlot(expression: string, timezone: string, afterMs: number): number {
  return hasWildcardHour(expression)
    ? nextWildcardSlot(expression, timezone, afterMs)
    : nextFixedSlot(expression, timezone, afterMs);
}

/** The slots in (afterMs, untilMs], ascending, at most `limit` of them (catch-up after an outage). */
export function cronSlotsBetween(expression: string, timezone: string, afterMs: number, untilMs: number, limit: number): number[] {
  const slots: number[] = [];
  let slot = afterMs;
  while (slots.length < limit) {
    slot = nextCronSlot(expression, timezone, slot);
    if (slot > untilMs) break;
    slots.push(slot);
  }
  return slots;
}

/**
 * The hour field starts with a wildcard (`?` is cron-parser's synonym for `*`). Vixie cron also
 * counts a wildcard minute, but DECISIONS.md speaks of wildcard hours only, so `*\/20 2 * * *` is fixed.
 */
function hasWildcardHour(expression: string): boolean {
  const fields = cronFields(expression);
  return /^[*?]/.test(fields[fields.length - 4] ?? '');
}

function nextWildcardSlot(expression: string, zone: string, afterMs: number): number {
  // Walk the spans of constant offset, in which the wall clock keeps pace with real time. In the
  // first span only readings after afterMs's count; in later ones the reading at the change does.
  let start = afterMs;
  let wallAfter = afterMs + offsetMs(zone, afterMs);
  for (;;) {
    const candidate = matchAfter(expression, wallAfter) - offsetMs(zone, start);
    const change = nextChange(zone, start, candidate);
    if (change === null) return candidate;
    start = change;
    wallAfter = change + offsetMs(zone, change) - 1;
  }
}

function nextFixedSlot(expression: string, zone: string, afterMs: number): number {
  const due = matchAfter(expression, wallHighWater(zone, afterMs));
  // The first real instant at which the clock reads `due` or later.
  let start = afterMs;
  for (;;) {
    const candidate = due - offsetMs(zone, start);
    const change = nextChange(zone, start, candidate);
    if (change === null) return candidate;
    // The clock jumped over `due` (a spring-forward gap): it runs at the gap end.
    if (change + offsetMs(zone, change) >= due) return change;
    start = change;
  }
}

/**
 * The latest wall time shown at or before `afterMs` (Vixie's "virtual time"). After a fall-back
 * the clock shows an hour again; fixed times in it already ran and wait until the clock is past
 * the old reading. A day covers any clock change's size.
 */
function wallHighWater(zone: string, afterMs: number): number {
  const now = afterMs + offsetMs(zone, afterMs);
  const change = nextChange(zone, afterMs - DAY_MS, afterMs);
  return change === null ? now : Math.max(now, change - 1 + offsetMs(zone, change - 1));
}

const rules = new Map<string, CronExpression>();
const MAX_RULES = 256;

/** The first wall time after `wallMs` that matches `expression`. */
function matchAfter(expression: string, wallMs: number): number {
  let rule = rules.get(expression);
  if (rule === undefined) {
    if (rules.size >= MAX_RULES) rules.clear();
    rule = cronParser().parse(expression, { tz: 'UTC' });
    rules.set(expression, rule);
  }
  // The iterator is reset on every call, so the cached object holds no state between calls.
  rule.reset(new Date(wallMs));
  return rule.next().getTime();
}

/**
 * The first instant in (fromMs, toMs] whose offset differs from the offset at fromMs, or null.
 * It probes a day apart, so two changes less than a day apart that cancel each other out would be
 * missed; the tz database has no such pair that we know of.
 */
function nextChange(zone: string, fromMs: number, toMs: number): number | null {
  const offset = offsetMs(zone, fromMs);
  for (let lo = fromMs; lo < toMs; ) {
    let hi = Math.min(lo + DAY_MS, toMs);
    if (offsetMs(zone, hi) === offset) {
      lo = hi;
      continue;
    }
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offsetMs(zone, mid) === offset) lo = mid;
      else hi = mid;
    }
    return hi;
  }
  return null;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** What to add to instant `t` to get its wall-clock reading in `zone`, written as UTC. */
function offsetMs(zone: string, t: number): number {
  let format = formats.get(zone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, format);
  }
  const field: Record<string, number> = {};
  for (const { type, value } of format.formatToParts(t)) field[type] = Number(value);
  // Intl shows whole seconds, so the offset is taken against the instant's whole second.
  const wall = Date.UTC(field.year, field.month - 1, field.day, field.hour, field.minute, field.second);
  return wall - Math.floor(t / 1000) * 1000;
}

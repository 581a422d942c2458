/**
 * How the dashboard writes values: times in ISO 8601 UTC as the CLI prints them (whatever the
 * server's time zone), durations in the CLI's words ("2 min 5 s"), queues as `-` when there is
 * none, statuses in lower case. Pure functions: the caller passes "now".
 */
import { html, type SafeHtml } from './html.js';

/** ISO 8601 in UTC, or an em dash for no time. */
export function isoTime(d: Date | null | undefined): string {
  return d ? d.toISOString() : '—';
}

/** Seconds as the CLI writes them: `4.2 s`, `45 s`, `2 min 5 s`, `3 h 10 min`, `2 d 4 h`. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  const sign = seconds < 0 ? '-' : '';
  let s = Math.abs(seconds);
  if (s < 10) return `${sign}${Math.round(s * 10) / 10} s`;
  s = Math.round(s);
  if (s < 60) return `${sign}${s} s`;
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3600],
    ['min', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  for (const [unit, size] of units) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0 || parts.length > 0) parts.push(n > 0 ? `${n} ${unit}` : '');
    if (parts.length === 2) break;
  }
  return sign + parts.filter(Boolean).join(' ');
}

/** "3 min ago" or "in 2 min", relative to `nowMs`. */
export function relative(d: Date, nowMs: number): string {
  const seconds = (nowMs - d.getTime()) / 1000;
  if (Math.abs(seconds) < 1) return 'now';
  return seconds > 0 ? `${duration(seconds)} ago` : `in ${duration(-seconds)}`;
}

/** A `<time>` element: the ISO time, with the relative time beside it. */
export function timeCell(d: Date | null | undefined, nowMs: number): SafeHtml {
  if (!d) return html`<span class="muted">—</span>`;
  return html`<time datetime="${d.toISOString()}" title="${d.toISOString()}">${d.toISOString()}</time> <span class="muted">${relative(d, nowMs)}</span>`;
}

/** 1234567 → "1,234,567" (fixed, not the server's locale). */
export function count(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A queue as tables show it: `-` for no queue. */
export function queueLabel(q: string | null): string {
  return q ?? '-';
}

export function statusLabel(s: string): string {
  return s.toLowerCase();
}

/** `s` cut to `max` characters with an ellipsis. */
export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
}

/** Indented JSON for display; text that is not JSON is shown as it is rather than failing. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** `n task`/`n tasks`. */
export function plural(n: number, word: string): string {
  return `${count(n)} ${word}${n === 1 ? '' : 's'}`;
}

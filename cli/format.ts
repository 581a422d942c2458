/**
 * How the operations commands show things: aligned tables, ISO dates in UTC, durations in words,
 * JSON for scripts, and a progress line that is drawn only on a terminal.
 */

/** Writes one line to stdout. */
export function line(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** Writes `value` as one line of JSON (Dates become ISO strings in UTC). */
export function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** An ISO 8601 time in UTC, or `-`. */
export function iso(v: Date | number | null | undefined): string {
  if (v === null || v === undefined) return '-';
  const d = typeof v === 'number' ? new Date(v) : v;
  return Number.isNaN(d.getTime()) ? '-' : d.toISOString();
}

/** A duration in words: `420 ms`, `4.2 s`, `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  const neg = seconds < 0 ? '-' : '';
  let s = Math.abs(seconds);
  // Below a second in milliseconds: a 10 ms run was "0 s".
  if (Math.round(s * 1000) < 1000) return `${neg}${Math.round(s * 1000)} ms`;
  if (s < 10) return `${neg}${Math.round(s * 10) / 10} s`;
  s = Math.round(s);
  if (s < 60) return `${neg}${s} s`;
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3600],
    ['min', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  for (const [name, size] of units) {
    const n = Math.floor(s / size);
    if (n > 0 || parts.length > 0) parts.push(`${n} ${name}`);
    s -= n * size;
    if (parts.length === 2) break;
  }
  return neg + parts.filter((p) => !p.startsWith('0 ')).join(' ');
}

/** `s` cut to `max` characters with an ellipsis. */
export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
}

/** `s` on one line: line breaks, tabs and other control characters written as escapes. */
export function oneLine(s: string): string {
  let out = '';
  for (const c of s) {
    const code = c.charCodeAt(0);
    if (code >= 0x20 && code !== 0x7f) out += c;
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else out += `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return out;
}

/**
 * A stored text that cannot be read back, as tables and `show` print it: the reason in
 * parentheses (with the parser's message when `detailed`), then the text as stored, on one line.
 */
export function unreadableLabel(u: { text: string; reason: string; parseError: string | null }, detailed = false): string {
  const why = detailed && u.parseError ? `${u.reason}: ${u.parseError}` : u.reason;
  // The parser's message may quote the text, line breaks and all.
  return oneLine(`(${why}) ${u.text}`);
}

/** A queue as tables show it: `-` for no queue. */
export function queueLabel(q: string | null): string {
  return q ?? '-';
}

/** A status as the CLI writes it in tables: lower case, as `--state` takes it. */
export function statusLabel(s: string): string {
  return s.toLowerCase();
}

/** A table with a header row; columns padded to their widest cell, numbers right-aligned. */
export function table(headers: string[], rows: string[][], numeric: readonly number[] = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const render = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.includes(i) ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [render(headers), ...rows.map(render)].join('\n');
}

/** Indents every line of `text`. */
export function indent(text: string, by = '    '): string {
  return text
    .split('\n')
    .map((l) => (l === '' ? l : by + l))
    .join('\n');
}

/**
 * A progress line on stderr, redrawn in place; nothing at all when stderr is not a terminal
 * (logs and cron mails get the final summary only).
 */
export class Progress {
  private readonly enabled: boolean;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.enabled = Boolean(out.isTTY);
  }

  update(done: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const pct = this.total > 0 ? Math.min(100, Math.floor((done / this.total) * 100)) : 100;
    this.out.write(`\r${this.label} ${done.toLocaleString('en-US')} / ${this.total.toLocaleString('en-US')} (${pct}%)\u001b[K`);
    this.drawn = true;
  }

  /** Clears the line so the summary that follows starts clean. */
  finish(): void {
    if (this.enabled && this.drawn) this.out.write('\r\u001b[K');
  }
}

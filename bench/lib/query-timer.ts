/**
 * Times every statement knex sends, in this process, by wrapping knex's `Client.prototype.query`
 * (every dialect client and every transaction client inherits it, so BEGIN and COMMIT are
 * included). It times the round trip as the caller sees it: driver, network, server, and the
 * event-loop delay before the result is handled. Used by the profile and, through
 * query-timer-preload.ts, inside spawned CLI processes.
 *
 * SQLite's one-row inserts bypass `query` (statements prepared once per connection,
 * core/store/dialects/sqlite-prepared.ts) and only announce themselves with knex's `query` and
 * `query-response` events, marked `prepared`; those are timed from one event to the other.
 */
import { createRequire } from 'node:module';

export interface QueryRecord {
  /** The statement with bound values as placeholders, table prefixes and IN-lists folded. */
  shape: string;
  ms: number;
  /** performance.now() when it was sent. */
  at: number;
}

export interface CapturedQuery {
  sql: string;
  bindings: unknown[];
}

type QueryFn = (this: unknown, connection: unknown, query: unknown) => Promise<unknown>;

export class QueryTimer {
  records: QueryRecord[] = [];
  recording = false;
  private captureNext: ((q: CapturedQuery) => boolean) | null = null;
  private captured: CapturedQuery | null = null;

  start(): void {
    this.records = [];
    this.recording = true;
  }

  stop(): QueryRecord[] {
    this.recording = false;
    return this.records;
  }

  /** Keeps the SQL and bindings of the next statement for which `match` is true. */
  captureFirst(match: (q: CapturedQuery) => boolean): void {
    this.captured = null;
    this.captureNext = match;
  }

  takeCaptured(): CapturedQuery | null {
    const c = this.captured;
    this.captured = null;
    this.captureNext = null;
    return c;
  }

  /** Called by the patched client for each statement. */
  observe(sql: string, bindings: unknown[], at: number, ms: number): void {
    if (this.captureNext && this.captureNext({ sql, bindings })) {
      this.captured = { sql, bindings: [...bindings] };
      this.captureNext = null;
    }
    if (this.recording) this.records.push({ shape: shapeOf(sql), ms, at });
  }
}

let installed: QueryTimer | null = null;

/** The process's query timer; the first call patches knex. */
export function queryTimer(): QueryTimer {
  if (installed) return installed;
  const timer = new QueryTimer();
  // knex is CommonJS: this is the same module instance that `import knex from 'knex'` loads.
  const require = createRequire(import.meta.url);
  const Client = require('knex/lib/client.js') as { prototype: { query: QueryFn } };
  const original = Client.prototype.query;
  const emit = (Client.prototype as unknown as { emit: (this: unknown, event: string, ...args: unknown[]) => boolean }).emit;
  const sentAt = new WeakMap<object, number>();
  (Client.prototype as unknown as { emit: typeof emit }).emit = function (this: unknown, event: string, ...args: unknown[]) {
    const q = (event === 'query' ? args[0] : event === 'query-response' ? args[1] : null) as { sql?: string; bindings?: unknown[]; prepared?: boolean } | null;
    if (q?.prepared === true) {
      if (event === 'query') sentAt.set(q, performance.now());
      else {
        const at = sentAt.get(q) ?? performance.now();
        timer.observe(String(q.sql ?? ''), q.bindings ?? [], at, performance.now() - at);
      }
    }
    return emit.call(this, event, ...args);
  };
  Client.prototype.query = function (this: unknown, connection: unknown, query: unknown) {
    const at = performance.now();
    const q = query as { sql?: string; bindings?: unknown[] } | string;
    const sql = typeof q === 'string' ? q : String(q.sql ?? '');
    const bindings = typeof q === 'string' ? [] : (q.bindings ?? []);
    return original.call(this, connection, query).finally(() => timer.observe(sql, bindings, at, performance.now() - at));
  };
  installed = timer;
  return timer;
}

const shapes = new Map<string, string>();

/** Groups statements that differ only in literal values, IN-list lengths or table prefix. */
export function shapeOf(sql: string): string {
  let s = shapes.get(sql);
  if (s === undefined) {
    s = sql
      .replace(/\s+/g, ' ')
      .replace(/\bbench_[0-9a-f]{6}_/g, '')
      .replace(/\$\d+/g, '?')
      .replace(/\((\s*\?\s*,)+\s*\?\s*\)/g, '(?…)')
      .replace(/(\(\?…\)\s*,\s*)+\(\?…\)/g, '(?…), …')
      .replace(/\b\d+\b/g, 'N')
      .trim();
    if (shapes.size < 10_000) shapes.set(sql, s);
  }
  return s;
}

export interface ShapeSummary {
  shape: string;
  count: number;
  totalMs: number;
  maxMs: number;
}

/** Statements grouped by shape, the most time-consuming first. */
export function summarise(records: readonly QueryRecord[]): ShapeSummary[] {
  const by = new Map<string, ShapeSummary>();
  for (const r of records) {
    let s = by.get(r.shape);
    if (!s) by.set(r.shape, (s = { shape: r.shape, count: 0, totalMs: 0, maxMs: 0 }));
    s.count++;
    s.totalMs += r.ms;
    s.maxMs = Math.max(s.maxMs, r.ms);
  }
  return [...by.values()].sort((a, b) => b.totalMs - a.totalMs);
}

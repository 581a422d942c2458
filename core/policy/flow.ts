/**
 * Flow control as pure rules: which limits bind a task, how many of the due tasks a claim may
 * take without breaking any of them, in which order keys take turns, and when a rate window
 * reopens. The store counts what runs and what started (store/flow-claim.ts) and the worker
 * supplies the limits of its task files; these functions decide. No I/O, no clock of their own.
 *
 * Words: a *limiter* is one limit on one scope (a queue, a task name, or a task name and key);
 * its *usage* is what counts against it now (RUNNING tasks for a concurrency limit, attempts
 * started within the window for a rate limit).
 */
import { ValidationError } from '../errors.js';
import { SKEW_WARN_MS } from './clock-skew.js';

/** At most `limit` attempts start in any window of `period` seconds (per key with `perKey`). */
export interface RateLimit {
  limit: number;
  /** Seconds; fractions allowed. */
  period: number;
  /** Count each concurrency key on its own instead of the whole scope. */
  perKey?: boolean;
}

/** The limits one task name declares (`background({ concurrency, rateLimit, concurrencyLimit })`). */
export interface TaskLimits {
  /** RUNNING tasks of this name across every worker. */
  concurrency?: number | null;
  rateLimit?: RateLimit | null;
  /** RUNNING tasks of this name per concurrency key (default 1 when tasks carry a key). */
  concurrencyLimit?: number | null;
  /** The definition's own attempt and run-time limits (the worker registry shows them to `why`). */
  maxAttempts?: number | null;
  /** Seconds. */
  maxRunTime?: number | null;
}

/** The limits and state of one queue, as stored with it. */
export interface QueueLimits {
  paused: boolean;
  concurrency: number | null;
  rateLimit: RateLimit | null;
}

export type LimiterKind = 'concurrency' | 'rate';

/** One limit on one scope. `id` names the scope and the kind, e.g. `queue:mail#concurrency`. */
export interface Limiter {
  id: string;
  kind: LimiterKind;
  limit: number;
  /** Rate limiters: the window. */
  periodMs?: number;
  /** What an operator reads: `queue mail`, `task sendMail`, `task sendMail key user:7`. */
  scope: string;
}

/** What a claim needs to know of a due task to apply the limits. */
export interface FlowCandidate {
  id: string;
  name: string;
  queue: string | null;
  key: string | null;
}

const DEFAULT_KEY_LIMIT = 1;

function limiter(kind: LimiterKind, scope: string, limit: number, periodMs?: number): Limiter {
  return { id: `${scope}#${kind}`, kind, limit, periodMs, scope };
}

/** Every limiter that binds a task of `name` in `queue` with `key`. */
export function limitersFor(t: Omit<FlowCandidate, 'id'>, task: TaskLimits | undefined, queue: QueueLimits | undefined): Limiter[] {
  const out: Limiter[] = [];
  if (queue && t.queue !== null) {
    if (queue.concurrency !== null) out.push(limiter('concurrency', `queue ${t.queue}`, queue.concurrency));
    if (queue.rateLimit) {
      const scope = queue.rateLimit.perKey && t.key !== null ? `queue ${t.queue} key ${t.key}` : `queue ${t.queue}`;
      out.push(limiter('rate', scope, queue.rateLimit.limit, Math.round(queue.rateLimit.period * 1000)));
    }
  }
  if (task) {
    if (task.concurrency) out.push(limiter('concurrency', `task ${t.name}`, task.concurrency));
    if (task.rateLimit) {
      const scope = task.rateLimit.perKey && t.key !== null ? `task ${t.name} key ${t.key}` : `task ${t.name}`;
      out.push(limiter('rate', scope, task.rateLimit.limit, Math.round(task.rateLimit.period * 1000)));
    }
  }
  if (t.key !== null) out.push(limiter('concurrency', keyScope(t.name, t.key), task?.concurrencyLimit ?? DEFAULT_KEY_LIMIT));
  return out;
}

/** Whether `l` is the per-key concurrency limit of `t` (its name's limit for its key). */
export function isKeyLimit(l: Limiter, t: Omit<FlowCandidate, 'id'>): boolean {
  return t.key !== null && l.kind === 'concurrency' && l.scope === keyScope(t.name, t.key);
}

const keyScope = (name: string, key: string) => `task ${name} key ${key}`;

/** Usage per limiter id: RUNNING tasks (concurrency) or starts within the window (rate). */
export type Usage = Map<string, number>;

export interface Admission<T extends FlowCandidate> {
  /** The candidates a claim may take, in the order given. */
  admitted: T[];
  /** For each candidate left READY, the first limiter that was full. */
  held: Array<{ task: T; by: Limiter }>;
}

/**
 * Walks the candidates in order and admits each whose limiters all have room left, counting it
 * against them; stops after `max` admissions. Usage is not changed (a copy is counted).
 */
export function admit<T extends FlowCandidate>(candidates: readonly T[], limitersOf: (t: T) => Limiter[], usage: Usage, max: number): Admission<T> {
  const used = new Map(usage);
  const admitted: T[] = [];
  const held: Array<{ task: T; by: Limiter }> = [];
  for (const t of candidates) {
    if (admitted.length >= max) break;
    const limiters = limitersOf(t);
    const full = limiters.find((l) => (used.get(l.id) ?? 0) >= l.limit);
    if (full) {
      held.push({ task: t, by: full });
      continue;
    }
    for (const l of limiters) used.set(l.id, (used.get(l.id) ?? 0) + 1);
    admitted.push(t);
  }
  return { admitted, held };
}

/**
 * Keys take turns. Each key's tasks keep their own order (priority, then run time); the keys are
 * served round by round, starting with the first key after `cursor` in key order (wrapping), so a
 * key with a large backlog gets one turn per round like a key with a few tasks. Tasks without a
 * key form one more participant, served as if keyed by the empty string. Returns the new order
 * and the last key served in the first round (the next claim's cursor).
 */
export function takeTurns<T extends { key: string | null }>(tasks: readonly T[], cursor: string | null): { order: T[]; cursor: string | null } {
  const byKey = new Map<string, T[]>();
  for (const t of tasks) {
    const k = t.key ?? '';
    let list = byKey.get(k);
    if (!list) byKey.set(k, (list = []));
    list.push(t);
  }
  const keys = [...byKey.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (keys.length === 0) return { order: [], cursor };
  const start = cursor === null ? 0 : keys.findIndex((k) => k > cursor);
  const rotated = start <= 0 ? keys : [...keys.slice(start), ...keys.slice(0, start)];
  const order: T[] = [];
  for (let round = 0; order.length < tasks.length; round++) {
    for (const k of rotated) {
      const t = byKey.get(k)![round];
      if (t) order.push(t);
    }
  }
  return { order, cursor: rotated[rotated.length - 1] ?? cursor };
}

/**
 * A rate window: given the start times within the last `periodMs` (any order), how many more may
 * start at `nowMs`, and when the next place frees (null when there is room now).
 */
export function rateWindow(starts: readonly number[], limit: number, periodMs: number, nowMs: number): { room: number; reopensAt: number | null } {
  const inWindow = starts.filter((s) => s > nowMs - periodMs).sort((a, b) => a - b);
  const room = Math.max(0, limit - inWindow.length);
  if (room > 0) return { room, reopensAt: null };
  // The window frees a place when its oldest counted start leaves it.
  return { room: 0, reopensAt: inWindow[inWindow.length - limit]! + periodMs };
}

/**
 * The time a claim counts its rate windows at and records its starts at (the tasks' claim time):
 * the later of the worker's clock and the latest such time of any claim or prune before it, so the
 * starts of every worker form one timeline that never goes back. Claims reach the limiter out of
 * the order of their clocks (a claim reads its clock, then waits for the lock while others claim;
 * clocks of different machines differ), and a start that one claim dropped from its window, or
 * that the prune deleted, must be out of the window of every claim after it. A latest time more
 * than SKEW_WARN_MS ahead of this worker's clock is not followed: such a time comes from a clock
 * that was wrong (workers correct theirs) or simulated, and following it would stamp leases far
 * ahead; this worker's clock is used instead.
 */
export function flowTime(clockMs: number, latestMs: number | null): number {
  if (latestMs === null || latestMs <= clockMs || latestMs - clockMs > SKEW_WARN_MS) return clockMs;
  return latestMs;
}

// ── Validation (definition, call site, queue settings, CLI) ───────────────────────────────────

const shown = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

/** A concurrency limit: a whole number of tasks, at least 1. */
export function checkLimitCount(v: unknown, label: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new ValidationError(`Invalid ${label}: ${shown(v)} — expected a whole number of tasks >= 1`);
  }
  return v;
}

/** A rate limit: `{ limit, period, perKey? }` with a whole limit >= 1 and a period of seconds > 0. */
export function checkRateLimit(v: unknown, label: string): RateLimit {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ValidationError(`Invalid ${label}: ${shown(v)} — expected { limit, period } (at most limit starts per period seconds)`);
  }
  const o = v as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => k !== 'limit' && k !== 'period' && k !== 'perKey');
  if (extra.length > 0) throw new ValidationError(`Invalid ${label}: unknown field ${JSON.stringify(extra[0])} — expected limit, period and perKey`);
  checkLimitCount(o.limit, `${label}.limit`);
  if (typeof o.period !== 'number' || !Number.isFinite(o.period) || o.period <= 0 || o.period > 31_536_000) {
    throw new ValidationError(`Invalid ${label}.period: ${shown(o.period)} — expected a number of seconds > 0 (at most a year)`);
  }
  if (o.perKey !== undefined && typeof o.perKey !== 'boolean') throw new ValidationError(`Invalid ${label}.perKey: ${shown(o.perKey)} — expected true or false`);
  return { limit: o.limit as number, period: o.period, ...(o.perKey !== undefined ? { perKey: o.perKey as boolean } : {}) };
}

/** A concurrency key as stored: 1 to 190 characters, no NUL. */
export function checkConcurrencyKey(v: unknown, label: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 190 || v.includes('\u0000')) {
    throw new ValidationError(`Invalid ${label}: ${shown(v)} — expected a string of 1 to 190 characters (no NUL)`);
  }
  return v;
}

/** `50/2` (limit per seconds) from the command line. */
export function parseRateLimit(text: string, label: string): RateLimit {
  const m = /^\s*(\d+)\s*\/\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$/.exec(text);
  if (!m) throw new ValidationError(`Invalid ${label}: ${JSON.stringify(text)} — expected LIMIT/SECONDS, e.g. 50/2 (50 starts per 2 s) or 100/1m`);
  const unit = m[3] === 'm' ? 60 : m[3] === 'h' ? 3600 : 1;
  try {
    return checkRateLimit({ limit: Number(m[1]), period: Number(m[2]) * unit }, label);
  } catch (err) {
    // checkRateLimit names the object's fields (`--rate.period`): the text is what was typed.
    throw new ValidationError(`Invalid ${label}: ${JSON.stringify(text)} — expected LIMIT/SECONDS with LIMIT a whole number >= 1 and SECONDS > 0 (at most a year), e.g. 50/2 or 100/1m`, { cause: err });
  }
}

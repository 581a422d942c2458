/**
 * Task and call-site option validation and merging, as pure functions.
 * Precedence: call site > `.using()` > `background()` options > settings; an explicit `0` or
 * `null` at a higher level wins over a default below it (only `undefined` falls through).
 */
import { ValidationError } from '../errors.js';
import { DEDUPE_ACTIONS, PRIORITY_MAX, PRIORITY_MIN, type CallOptions, type DedupeAction } from '../types.js';
import { checkCron } from './cron-check.js';
import { checkConcurrencyKey, checkLimitCount, checkRateLimit } from './flow.js';
import { isValidTimeZone, timeZoneProblem } from './timezone.js';
import { inTimeRange, MAX_SPAN_SECONDS, TIME_RANGE } from './when.js';

type Checker = (v: unknown, label: string) => void;

const bad = (label: string, v: unknown, expected: string): never => {
  const shown =
    typeof v === 'string'
      ? JSON.stringify(v)
      : v instanceof Date
        ? Number.isNaN(v.getTime())
          ? 'an Invalid Date'
          : v.toISOString()
        : typeof v === 'object' && v !== null
          ? 'an object'
          : String(v);
  throw new ValidationError(`Invalid ${label}: ${shown} — expected ${expected}`);
};

const positiveSeconds: Checker = (v, l) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_SPAN_SECONDS) bad(l, v, `a number of seconds > 0 and <= ${MAX_SPAN_SECONDS}`);
};

/**
 * PostgreSQL refuses U+0000 in text ("invalid byte sequence for encoding UTF8: 0x00"), and the
 * other databases would store a name no command line can type: refused on every database.
 */
export function checkNoNul(v: unknown, label: string): void {
  if (typeof v === 'string' && v.includes('\u0000')) {
    throw new ValidationError(`Invalid ${label}: ${JSON.stringify(v)} — expected text without the NUL character (U+0000), which databases cannot store as text`);
  }
}

/** Node timers wait at most 2^31-1 ms (24.8 days): a longer run-time limit could not be enforced. */
const runTimeSeconds: Checker = (v, l) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 2_147_483) bad(l, v, 'a number of seconds > 0 and <= 2147483 (24.8 days)');
};

export const OPTION_CHECKS: Record<string, Checker> = {
  queue(v, l) {
    if (v !== null && (typeof v !== 'string' || v.length === 0 || v.length > 190)) bad(l, v, 'a queue name (1 to 190 characters) or null');
    checkNoNul(v, l);
  },
  priority(v, l) {
    if (!Number.isInteger(v) || (v as number) < PRIORITY_MIN || (v as number) > PRIORITY_MAX) bad(l, v, 'an integer (32-bit)');
  },
  maxAttempts(v, l) {
    if (!Number.isInteger(v) || (v as number) < 1) bad(l, v, 'an integer >= 1');
  },
  maxRunTime: runTimeSeconds,
  expiresAfter(v, l) {
    if (v !== null) positiveSeconds(v, l);
  },
  removeExisting(v, l) {
    if (typeof v !== 'boolean') bad(l, v, 'true or false');
  },
  action(v, l) {
    if (!DEDUPE_ACTIONS.includes(v as DedupeAction)) bad(l, v, `one of ${DEDUPE_ACTIONS.join(', ')}`);
  },
  repeat(v, l) {
    if (v === null) return;
    if (typeof v === 'number') {
      if (!Number.isFinite(v) || v < 0 || v > MAX_SPAN_SECONDS) bad(l, v, `seconds >= 0 (0 = never), a Repeat constant, or a cron expression (at most ${MAX_SPAN_SECONDS} seconds)`);
      return;
    }
    if (typeof v === 'string') {
      checkCron(v, l);
      return;
    }
    bad(l, v, 'seconds >= 0 (0 = never), a Repeat constant, or a cron expression');
  },
  repeatUntil(v, l) {
    if (v !== null && (!(v instanceof Date) || !inTimeRange(v.getTime()))) bad(l, v, `a Date or null (a Date ${TIME_RANGE})`);
  },
  timezone(v, l) {
    if (v !== null && (typeof v !== 'string' || !isValidTimeZone(v))) {
      bad(l, v, `an IANA time zone name such as "Europe/Berlin", or null (${timeZoneProblem(v)})`);
    }
  },
  repeatOnFailure(v, l) {
    if (typeof v !== 'boolean') bad(l, v, 'true or false');
  },
  verboseName(v, l) {
    if (v !== null && (typeof v !== 'string' || v.length > 255)) bad(l, v, 'a string of at most 255 characters, or null');
    checkNoNul(v, l);
  },
  concurrencyKey(v, l) {
    if (v === null || typeof v === 'function') return;
    checkConcurrencyKey(v, l);
  },
  concurrency(v, l) {
    checkLimitCount(v, l);
  },
  concurrencyLimit(v, l) {
    checkLimitCount(v, l);
  },
  rateLimit(v, l) {
    checkRateLimit(v, l);
  },
  creator(v, l) {
    if (v === null) return;
    const c = v as { type?: unknown; id?: unknown };
    if (
      typeof v !== 'object' ||
      typeof c.type !== 'string' ||
      c.type.length === 0 ||
      c.type.length > 190 ||
      !(typeof c.id === 'string' || (typeof c.id === 'number' && Number.isFinite(c.id))) ||
      String(c.id).length > 190
    ) {
      bad(l, v, 'a { type, id } reference (type a non-empty string, id a string or number), or null');
    }
    checkNoNul(c.type, `${l} (type)`);
    checkNoNul(c.id, `${l} (id)`);
  },
};

/** Checks every option in `opts` against `allowed`; unknown keys are errors (typos must not be silent). */
export function checkOptions(opts: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const [key, value] of Object.entries(opts)) {
    if (value === undefined) continue;
    if (!allowed.includes(key)) {
      throw new ValidationError(`Unknown option "${key}" in ${where} — expected one of: ${allowed.join(', ')}`);
    }
    OPTION_CHECKS[key]?.(value, `${key} in ${where}`);
  }
  if (opts.removeExisting === true && opts.action !== undefined && opts.action !== 'replaceExisting') {
    throw new ValidationError(
      `Invalid options in ${where}: removeExisting: true cannot be combined with action "${String(opts.action)}" — removeExisting is action "replaceExisting"`,
    );
  }
}

/** The call options any level may set. */
export const CALL_OPTION_KEYS = [
  'queue',
  'priority',
  'maxAttempts',
  'maxRunTime',
  'removeExisting',
  'action',
  'expiresAfter',
  'repeat',
  'repeatUntil',
  'timezone',
  'repeatOnFailure',
  'verboseName',
  'creator',
  'concurrencyKey',
] as const;

/** A layer's dedupe action: `action`, or the reference's `removeExisting` flag, or undefined. */
function layerAction(layer: Partial<CallOptions> | undefined): DedupeAction | undefined {
  if (!layer) return undefined;
  if (layer.action !== undefined) return layer.action;
  if (layer.removeExisting !== undefined) return layer.removeExisting ? 'replaceExisting' : 'schedule';
  return undefined;
}

/**
 * Layers options, highest precedence first: the first layer where a key is not `undefined` wins.
 * `action` and `removeExisting` are one choice: the highest layer that sets either decides it.
 */
export function mergeOptions(...layers: ReadonlyArray<Partial<CallOptions> | undefined>): Partial<CallOptions> {
  const out: Record<string, unknown> = {};
  const action = layers.map(layerAction).find((a) => a !== undefined);
  if (action !== undefined) out.action = action;
  for (const key of CALL_OPTION_KEYS) {
    if (key === 'action' || key === 'removeExisting') continue;
    for (const layer of layers) {
      const v = layer?.[key];
      if (v !== undefined) {
        out[key] = v;
        break;
      }
    }
  }
  return out as Partial<CallOptions>;
}

/** The dedupe action an option set asks for. */
export function effectiveAction(opts: Partial<CallOptions>): DedupeAction {
  if (opts.action !== undefined) return opts.action;
  return opts.removeExisting ? 'replaceExisting' : 'schedule';
}

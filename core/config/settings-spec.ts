/**
 * How each scalar setting is validated. One table serves `configure()`, config files, environment
 * variables and CLI flags, so a value is judged the same wherever it comes from. Every error names
 * the setting, where the value came from, the value, and what is allowed.
 */
import { checkLimitCount, checkRateLimit, type RateLimit } from '../policy/flow.js';
import { ConfigError } from '../errors.js';
import { isValidTimeZone } from '../policy/timezone.js';
import { MIN_LIVENESS_TIMEOUT } from '../policy/liveness.js';

interface Spec {
  /** What is allowed, for messages ("an integer >= 1"). */
  expected: string;
  /** Converts and checks a value; returns undefined when it is not allowed. */
  parse(value: unknown, fromString: boolean): unknown;
}

/**
 * A number written in decimal, as people type it (`4`, `-2`, `1.5`, `.5`, `1e3`; spaces around
 * trimmed); NaN for anything else. Number() also reads `0x10`, `0b1` and `0o7`, which no setting,
 * flag or variable means: `--priority 0x7` stored priority 7.
 */
export function decimal(text: string): number {
  const t = text.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN;
}

function num(kind: 'int' | 'float', min: number, exclusiveMin: boolean, max = Infinity): Spec {
  const bound = exclusiveMin ? `> ${min}` : `>= ${min}`;
  const what = kind === 'int' ? 'an integer' : 'a finite number';
  return {
    expected: max === Infinity ? `${what} ${bound}` : `${what} ${bound} and <= ${max}`,
    parse(value, fromString) {
      let n: number;
      if (typeof value === 'number') n = value;
      else if (fromString && typeof value === 'string') n = decimal(value);
      else return undefined;
      if (!Number.isFinite(n)) return undefined;
      if (kind === 'int' && !Number.isInteger(n)) return undefined;
      if (exclusiveMin ? n <= min : n < min) return undefined;
      if (n > max) return undefined;
      return n;
    },
  };
}

function oneOf<T extends string>(values: readonly T[]): Spec {
  return {
    expected: `one of ${values.map((v) => `"${v}"`).join(', ')}`,
    parse: (value) => (typeof value === 'string' && (values as readonly string[]).includes(value) ? value : undefined),
  };
}

const TABLE_PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,29}$/;

export const SETTING_SPECS = {
  tablePrefix: {
    expected: 'letters, digits and underscores, starting with a letter or underscore, at most 30 characters',
    parse: (v: unknown) => (typeof v === 'string' && (v === '' || TABLE_PREFIX.test(v)) ? v : undefined),
  },
  maxAttempts: num('int', 1, false),
  // Node timers wait at most 2^31-1 ms (24.8 days).
  maxRunTime: num('float', 0, true, 2_147_483),
  priorityOrdering: oneOf(['DESC', 'ASC'] as const),
  concurrency: num('int', 1, false, 1000),
  prefetch: {
    expected: '"auto" or an integer >= 0 and <= 10000',
    parse(v: unknown, fromString: boolean) {
      if (v === 'auto') return v;
      return num('int', 0, false, 10000).parse(v, fromString);
    },
  },
  taskFiles: {
    expected: 'a glob or a list of globs (comma-separated in the environment)',
    parse(v: unknown, fromString: boolean) {
      const list = typeof v === 'string' ? (fromString ? v.split(',') : [v]) : v;
      if (!Array.isArray(list) || list.length === 0) return undefined;
      const globs = list.map((g) => (typeof g === 'string' ? g.trim() : ''));
      return globs.every((g) => g !== '') ? globs : undefined;
    },
  },
  // The heartbeat and the recovery pass run on timers derived from it (a third, a half): Node
  // timers wait at most 2^31-1 ms, and a longer one would fire at once, in a loop.
  lockTimeout: num('float', 1, false, 2_147_483),
  heartbeatInterval: num('float', 0, true),
  sleep: num('float', 0, true),
  timezone: {
    expected: 'an IANA time zone name such as "UTC" or "Europe/Berlin"',
    parse: (v: unknown) => (typeof v === 'string' && isValidTimeZone(v) ? v : undefined),
  },
  maxArgsBytes: num('int', 2, false),
  maxSnoozes: num('int', 0, false, 1_000_000),
  maxResultBytes: num('int', 2, false),
  mode: oneOf(['normal', 'immediate', 'dummy'] as const),
  queues: {
    expected: 'an object of queue name → { concurrency?: integer >= 1 | null, rateLimit?: { limit, period, perKey? } | null }',
    parse(v: unknown) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      const out: Record<string, { concurrency?: number | null; rateLimit?: RateLimit | null }> = {};
      for (const [name, limits] of Object.entries(v)) {
        if (name === '' || name.length > 190 || typeof limits !== 'object' || limits === null || Array.isArray(limits)) return undefined;
        const l = limits as Record<string, unknown>;
        if (Object.keys(l).some((k) => k !== 'concurrency' && k !== 'rateLimit')) return undefined;
        try {
          out[name] = {
            ...(l.concurrency === undefined ? {} : { concurrency: l.concurrency === null ? null : checkLimitCount(l.concurrency, 'concurrency') }),
            ...(l.rateLimit === undefined ? {} : { rateLimit: l.rateLimit === null ? null : checkRateLimit(l.rateLimit, 'rateLimit') }),
          };
        } catch {
          return undefined;
        }
      }
      return out;
    },
  },
  maxQueueSize: {
    expected: 'an object of queue name → integer >= 1',
    parse(v: unknown) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      for (const n of Object.values(v)) if (!Number.isInteger(n) || (n as number) < 1) return undefined;
      return { ...(v as Record<string, number>) };
    },
  },
  errorsKept: num('int', 1, false, 1000),
  cronGrace: num('float', 1, false),
  // Both become Node timers: at most 2^31-1 ms.
  connectTimeout: num('float', 0, true, 2_147_483),
  statementTimeout: num('float', 0, true, 2_147_483),
  // 0: no liveness beat. Its fence (two thirds of it) must leave more than the ~2 s two workers'
  // clocks may differ by before the others may take its tasks (policy/liveness.ts).
  livenessTimeout: {
    expected: `0 (off), or a finite number >= ${MIN_LIVENESS_TIMEOUT} and <= 2147483`,
    parse(v: unknown, fromString: boolean) {
      const n = num('float', 0, false, 2_147_483).parse(v, fromString) as number | undefined;
      return n === undefined || (n !== 0 && n < MIN_LIVENESS_TIMEOUT) ? undefined : n;
    },
  },
} satisfies Record<string, Spec>;

export type SettingName = keyof typeof SETTING_SPECS | 'database';

/** A value as an error message shows it (short, strings quoted). */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'function') return 'a function';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Validates one setting; `source` names where it came from (variable, flag, file). */
export function parseWithSpec(key: SettingName, value: unknown, source: string, fromString = false): unknown {
  const spec = (SETTING_SPECS as Record<string, Spec>)[key];
  if (!spec) throw new ConfigError(`Unknown setting "${key}" (from ${source})`);
  const parsed = spec.parse(value, fromString);
  if (parsed === undefined) {
    const where = source === key ? key : `${key} (from ${source})`;
    throw new ConfigError(`Invalid ${where}: ${describeValue(value)} — expected ${spec.expected}`);
  }
  return parsed;
}

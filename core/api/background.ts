/**
 * `background()`: turns a function into a task definition. Calling the definition enqueues a task;
 * `.now()` runs the function inline; `.using()` makes a variant with other defaults; `.bulk()`
 * enqueues many calls in one transaction.
 */
import type { TaskContext } from '../definition/context.js';
import { enqueueBulk, enqueueCall } from './enqueue.js';
import { snooze, ValidationError } from '../errors.js';
import { createLogger } from '../base/log.js';
import { CALL_OPTION_KEYS, checkOptions } from '../policy/options.js';
import { checkWhen } from '../policy/when.js';
import { callerOrigin, register } from '../definition/registry.js';
import { isSchedule, type BulkOptions, type Schedule } from './schedule.js';
import type { CallOptions, When } from '../types.js';
import type { TaskHandle } from './enqueue.js';
import { declaredSchedules, type CronCall } from '../definition/recurring.js';
import { INTERNALS, type DefinitionInternals, type TaskOptions } from '../definition/definition.js';
import { checkValidator } from '../definition/validate.js';

// ── Types that keep arguments JSON-safe at compile time ───────────────────────────────────────

type NotJson =
  | Date
  | Map<unknown, unknown>
  | Set<unknown>
  | WeakMap<object, unknown>
  | WeakSet<object>
  | RegExp
  | Promise<unknown>
  | ((...args: any[]) => unknown)
  | bigint
  | symbol
  | undefined;

type IsAny<T> = 0 extends 1 & T ? true : false;
type Depth = [never, 0, 1, 2, 3, 4, 5, 6, 7, 8];

/** The parts of T that cannot survive JSON (never when T is fine). Recursion stops at depth 8. */
type NonJsonPart<T, D extends number = 8> = [D] extends [never]
  ? never
  : IsAny<T> extends true
    ? never
    : unknown extends T
      ? never
      : T extends NotJson
        ? T
        : T extends string | number | boolean | null
          ? never
          : T extends readonly unknown[]
            ? NonJsonPart<T[number], Depth[D]>
            : T extends object
              ? { [K in keyof T]-?: NonJsonPart<T[K], Depth[D]> }[keyof T]
              : never;

/** Argument types that cannot survive JSON make the `background()` call a compile error. */
export type JsonArgsCheck<A extends unknown[]> = [NonJsonPart<Required<A>[number]>] extends [never]
  ? unknown
  : { 'bgtasks: task arguments must survive JSON, and this type does not': NonJsonPart<Required<A>[number]> };

/**
 * The arguments followed by a schedule. Trailing optional parameters may be left out before the
 * schedule: for `(to: string, times?: number)` both `(to, schedule(…))` and `(to, 2, schedule(…))`.
 */
export type ArgsWithSchedule<A extends unknown[]> = number extends A['length']
  ? [...A, Schedule]
  : A extends [infer H, ...infer T]
    ? [H, ...ArgsWithSchedule<T>]
    : A extends []
      ? [Schedule]
      : A extends [(infer H)?, ...infer T]
        ? [Schedule] | [Exclude<H, undefined>, ...ArgsWithSchedule<T>]
        : [...A, Schedule];

/** A task definition: call it to enqueue. */
export interface TaskDefinition<A extends unknown[], R> {
  /** Enqueues a call with the task's defaults. */
  (...args: A): Promise<TaskHandle<Awaited<R>>>;
  /** Enqueues a call with call-site options: `task(a, b, schedule(90, { priority: 5 }))`. */
  (...args: ArgsWithSchedule<A>): Promise<TaskHandle<Awaited<R>>>;
  readonly name: string;
  readonly options: Readonly<TaskOptions>;
  /** Runs the function inline; nothing is stored. */
  now(...args: A): R;
  /** A variant with other defaults (the same registered task). */
  using(options: CallOptions & { schedule?: When }): TaskDefinition<A, R>;
  /** Enqueues many calls: chunked multi-row inserts in one transaction. */
  bulk(calls: readonly A[], options?: BulkOptions<A>): Promise<TaskHandle<Awaited<R>>[]>;
}

const DEFINITION_KEYS = [
  ...CALL_OPTION_KEYS.filter((k) => k !== 'verboseName' && k !== 'creator'),
  'name',
  'schedule',
  'context',
  'connection',
  'cron',
  'args',
  'catchUp',
  'validate',
  'concurrency',
  'concurrencyLimit',
  'rateLimit',
];
const USING_KEYS = [...CALL_OPTION_KEYS, 'schedule'];

export function background<A extends unknown[], R>(fn: ((...args: A) => R) & JsonArgsCheck<A>): TaskDefinition<A, R>;
export function background<A extends unknown[], R>(
  options: TaskOptions<A> & CronCall<A> & { context: true },
  fn: ((ctx: TaskContext, ...args: A) => R) & JsonArgsCheck<A>,
): TaskDefinition<A, R>;
export function background<A extends unknown[], R>(
  options: TaskOptions<A> & CronCall<A> & { context?: false },
  fn: ((...args: A) => R) & JsonArgsCheck<A>,
): TaskDefinition<A, R>;
export function background(a: unknown, b?: unknown): TaskDefinition<unknown[], unknown> {
  const [options, fn] = typeof a === 'function' && b === undefined ? [{} as TaskOptions, a] : [a as TaskOptions, b];
  if (typeof fn !== 'function') {
    throw new ValidationError('background() expects a function, or options and a function: background({ queue: "mail" }, async function sendMail(to) { … })');
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError('background(options, fn): options must be an object');
  }
  checkOptions(options as Record<string, unknown>, DEFINITION_KEYS, 'background() options');
  checkWhen(options.schedule, 'schedule in background() options');
  const name = options.name ?? (fn as { name?: string }).name;
  if (typeof name !== 'string' || name.trim() === '') {
    throw new ValidationError('background(): an anonymous function needs a name — pass { name: "…" } or use a named function');
  }
  if (name.length > 190) throw new ValidationError(`background(): task name is ${name.length} characters — expected at most 190`);
  checkValidator(options.validate, `background() "${name}"`);
  const schedules = declaredSchedules(name, options);
  // The call site is captured now and its stack formatted only when read (a name registered
  // twice): formatting runs through the source maps that tsx turns on, and was most of the cost
  // of a worker's first background() call.
  const site = new Error();
  let origin: string | null | undefined;
  const internals: DefinitionInternals = {
    schedules,
    name,
    fn: fn as (...args: any[]) => unknown,
    options: Object.freeze({ ...options }),
    using: Object.freeze({}),
    takesContext: options.context === true,
    get origin() {
      if (origin === undefined) origin = callerOrigin(site);
      return origin;
    },
  };
  register(internals);
  return makeDefinition(internals);
}

function makeDefinition(internals: DefinitionInternals): TaskDefinition<unknown[], unknown> {
  const call = (...args: unknown[]): Promise<TaskHandle> => {
    const last = args[args.length - 1];
    const sched = isSchedule(last) ? last : undefined;
    return enqueueCall(internals, sched ? args.slice(0, -1) : args, sched);
  };
  Object.defineProperty(call, 'name', { value: internals.name });
  Object.defineProperty(call, INTERNALS, { value: internals });
  const def = Object.assign(call, {
    options: internals.options,
    now: (...args: unknown[]) => runInline(internals, args),
    using(options: CallOptions & { schedule?: When }) {
      checkOptions(options as Record<string, unknown>, USING_KEYS, '.using() options');
      checkWhen(options.schedule, 'schedule in .using() options');
      return makeDefinition({ ...internals, using: Object.freeze({ ...internals.using, ...options }) });
    },
    bulk: (calls: readonly unknown[][], options?: BulkOptions) => enqueueBulk(internals, calls, options ?? {}),
  });
  return def as unknown as TaskDefinition<unknown[], unknown>;
}

/** `.now()`: the function itself, with an inline context for tasks that take one. */
function runInline(internals: DefinitionInternals, args: unknown[]): unknown {
  if (!internals.takesContext) return internals.fn(...args);
  const ctx: TaskContext = {
    id: 'inline',
    attempt: 1,
    signal: new AbortController().signal,
    queue: internals.using.queue ?? internals.options.queue ?? null,
    name: internals.name,
    log: createLogger({ base: { task: internals.name, id: 'inline' } }),
    // Inline there is no queue to go back to: the Snooze reaches the caller.
    snooze: (seconds: number): never => {
      throw snooze(seconds);
    },
  };
  return internals.fn(ctx, ...args);
}

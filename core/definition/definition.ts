/**
 * What both sides need of a task definition: its options and internals. The client side
 * (`api/background.ts`) makes definitions; the worker and the loader read them through this type,
 * and the registry stores it as it is.
 */
import type { CallOptions, CommonTaskOptions, When } from '../types.js';
import type { CatchUp, CronSchedule, DeclaredSchedule } from './recurring.js';
import type { ArgsValidator } from './validate.js';
import type { RateLimit } from '../policy/flow.js';

/** Options of `background(options, fn)`. */
export interface TaskOptions<A extends unknown[] = unknown[]> extends CommonTaskOptions {
  /**
   * Run on a cron schedule, enqueued by the workers exactly once per slot: an expression (with
   * `args`), or several schedules. See docs/scheduling.md.
   */
  cron?: string | CronSchedule<A>[];
  /** The arguments of the `cron` schedule (when `cron` is one expression). */
  args?: A;
  /** Slots missed while no worker ran: `skip` (default), `once`, or a number to backfill. */
  catchUp?: CatchUp;
  /**
   * Checks the arguments at enqueue and again before each run: a function that throws (or returns
   * false or a message), or a Standard Schema (zod, valibot…) of the argument tuple.
   */
  validate?: ArgsValidator<A>;
  /** The registry name. Default: the function's name. */
  name?: string;
  /** Default run time of each call: seconds from now, a Date or a duration. Default: now. */
  schedule?: When;
  /** The function takes a TaskContext as its first parameter. */
  context?: boolean;
  /** The named connection its tasks are stored in (see the `connections` setting). */
  connection?: string;
  /** At most this many of its tasks RUNNING at once, across every worker (docs/flow-control.md). */
  concurrency?: number;
  /**
   * Each task's concurrency key, from its arguments (or a fixed string): at most
   * `concurrencyLimit` tasks with one key run at once, and keys take turns.
   */
  concurrencyKey?: string | null | ((...args: A) => string);
  /** RUNNING tasks per concurrency key, across every worker. Default 1. */
  concurrencyLimit?: number;
  /** At most `limit` attempts start in any window of `period` seconds, across every worker. */
  rateLimit?: RateLimit;
}

/** What the worker needs of a definition. */
export interface DefinitionInternals {
  name: string;
  fn: (...args: any[]) => unknown;
  options: Readonly<TaskOptions>;
  /** Options from `.using()`, between the call site and the definition. */
  using: Readonly<CallOptions & { schedule?: When }>;
  takesContext: boolean;
  origin: string | null;
  /** Cron schedules declared with the definition. */
  schedules: DeclaredSchedule[];
}

/** Where a definition function keeps its internals (a symbol: invisible to the application). */
export const INTERNALS = Symbol.for('bgtasks.definition');

export function internalsOf(def: unknown): DefinitionInternals | undefined {
  return typeof def === 'function' ? ((def as unknown as Record<symbol, DefinitionInternals>)[INTERNALS] ?? undefined) : undefined;
}

/**
 * Enqueue: validate the call, resolve its options, and store it (following its dedupe action) as
 * one transaction. Nothing is stored when anything fails.
 */
import type { Knex } from 'knex';
import { currentClock } from '../base/clock.js';
import { getSettings, type Settings } from '../config/settings.js';
import { ValidationError } from '../errors.js';
import { events } from '../base/events.js';
import { canonicalArgs, taskHash } from '../base/json.js';
import { checkOptions, effectiveAction, mergeOptions } from '../policy/options.js';
import { checkWhen } from '../policy/when.js';
import { checkConcurrencyKey } from '../policy/flow.js';
import { checkTarget, isSchedule, SCHEDULE_OPTION_KEYS } from './schedule.js';
import { resolveWhen } from '../policy/when.js';
import { newTaskRow, taskWithArgs, type NewTask } from '../store/rows.js';
import type { BulkOptions, ScheduleOptions, Schedule } from './schedule.js';
import { checkIdempotencyKey } from '../policy/idempotency.js';
import type { DefinitionInternals } from '../definition/definition.js';
import type { CallOptions, EnqueueOutcome, TaskRef, When } from '../types.js';
import { validateForEnqueue, type ArgsValidator } from '../definition/validate.js';
import { openBackend } from './backend.js';
import { HANDLE_CONNECTION, type TaskHandle, type TaskResult } from './handle.js';
import { getResult } from './results.js';
import { failSpan, loadTracing, startProducerSpan, storedContext, tracingLoaded, type OtelApi, type OtelSpan } from '../base/tracing.js';

/**
 * The producer span of an enqueue, when OpenTelemetry is there: started just before the insert
 * (its context is stored with the task), ended with the id the store gave, or with the error.
 */
async function traced<T extends { id: string }>(task: { name: string; queue: string | null }, count: number | null, insert: (traceContext: string | null) => Promise<T>): Promise<T> {
  const loaded = tracingLoaded();
  const otel: OtelApi | null = loaded === undefined ? await loadTracing() : loaded;
  if (!otel) return insert(null);
  const span: OtelSpan = startProducerSpan(otel, task, count);
  let result: T;
  try {
    result = await insert(storedContext(otel, span));
  } catch (err) {
    failSpan(otel, span, err);
    throw err;
  }
  // A bulk's messages have ids of their own: its span says how many (messaging.batch.message_count).
  if (count === null) span.setAttribute('messaging.message.id', result.id);
  span.end();
  return result;
}

/** What every call with the same options shares: the task row without its arguments. */
export function prepareCall(
  def: DefinitionInternals,
  when: When | undefined,
  callOpts: Partial<CallOptions>,
  settings: Settings,
  nowMs: number,
): { template: Omit<NewTask, 'args' | 'hash'>; opts: Partial<CallOptions>; keyOf: KeyFunction | null } {
  const opts = mergeOptions(callOpts, def.using, def.options as Partial<CallOptions>);
  // A definition's key may be a function of the arguments: then each call computes its own.
  const key = opts.concurrencyKey as string | null | KeyFunction | undefined;
  const runAt = resolveWhen(when ?? def.using.schedule ?? def.options.schedule, nowMs);
  const repeat = opts.repeat ?? null;
  // Call-site and .using() limits are stored with the task; the definition's own are read by
  // the worker from the definition, so changing them in code applies to tasks already queued.
  const stored = (k: 'maxAttempts' | 'maxRunTime') => callOpts[k] ?? def.using[k] ?? null;
  const template: Omit<NewTask, 'args' | 'hash'> = {
    name: def.name,
    queue: opts.queue ?? null,
    priority: opts.priority ?? 0,
    verboseName: opts.verboseName ?? null,
    creatorType: opts.creator ? opts.creator.type : null,
    creatorId: opts.creator ? String(opts.creator.id) : null,
    runAt,
    scheduledAt: runAt,
    enqueuedAt: nowMs,
    maxAttempts: stored('maxAttempts'),
    maxRunTime: stored('maxRunTime'),
    expiresAt: opts.expiresAfter ? runAt + Math.round(opts.expiresAfter * 1000) : null,
    repeatEvery: typeof repeat === 'number' ? repeat : 0,
    repeatCron: typeof repeat === 'string' ? repeat : null,
    timezone: typeof repeat === 'string' ? (opts.timezone ?? settings.timezone) : null,
    repeatUntil: opts.repeatUntil ? opts.repeatUntil.getTime() : null,
    repeatOnFailure: opts.repeatOnFailure ?? true,
    recurringKey: null,
    concurrencyKey: typeof key === 'string' ? key : null,
    traceContext: null,
    // A call-site option only (it names one enqueue): set by enqueueCall and per bulk call.
    idempotencyKey: null,
  };
  return { template, opts, keyOf: typeof key === 'function' ? key : null };
}

type KeyFunction = (...args: unknown[]) => unknown;

/** The concurrency key a definition's function gives for one call's arguments, checked. */
export function keyOfCall(def: DefinitionInternals, keyOf: KeyFunction, args: readonly unknown[]): string {
  let key: unknown;
  try {
    key = keyOf(...args);
  } catch (err) {
    throw new ValidationError(`${def.name}: its concurrencyKey function threw for these arguments: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return checkConcurrencyKey(key, `concurrencyKey of ${def.name} (what its function returned)`);
}

/** The idempotency key a bulk's function gives for one call's arguments, checked. */
function idempotencyKeyOfCall(def: DefinitionInternals, keyFn: (...args: unknown[]) => string, args: readonly unknown[]): string {
  let key: unknown;
  try {
    key = keyFn(...args);
  } catch (err) {
    throw new ValidationError(`${def.name}: its idempotencyKey function threw for these arguments: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return checkIdempotencyKey(key, 'idempotencyKey (what its function returned)');
}

/** One call's arguments, checked (JSON, size) and hashed, on a prepared template. */
export function callTask(
  def: DefinitionInternals,
  template: Omit<NewTask, 'args' | 'hash'>,
  args: readonly unknown[],
  settings: Settings,
  keyOf: KeyFunction | null = null,
): NewTask {
  if (!Array.isArray(args)) throw new ValidationError(`${def.name}: arguments must be an array`);
  const argsJson = checkedArgsJson(def, args, settings);
  return taskWithArgs(template, argsJson, taskHash(def.name, argsJson), keyOf ? keyOfCall(def, keyOf, args) : template.concurrencyKey);
}

/** The canonical JSON of a call's arguments, refused when not JSON or over maxArgsBytes. */
function checkedArgsJson(def: DefinitionInternals, args: readonly unknown[], settings: Settings): string {
  const argsJson = canonicalArgs(args);
  if (argsJson.length * 3 > settings.maxArgsBytes) {
    // UTF-8 needs at most 3 bytes per UTF-16 unit: only long texts need the exact count.
    const bytes = Buffer.byteLength(argsJson);
    if (bytes > settings.maxArgsBytes) {
      throw new ValidationError(
        `${def.name}: arguments are ${bytes} bytes of JSON — expected at most ${settings.maxArgsBytes} (the maxArgsBytes setting); store large data elsewhere and pass its id`,
      );
    }
  }
  return argsJson;
}

/** The row an enqueue would insert, built from the call and its options. */
export function buildTask(
  def: DefinitionInternals,
  args: readonly unknown[],
  when: When | undefined,
  callOpts: Partial<CallOptions>,
  settings: Settings,
  nowMs: number,
): { task: NewTask; opts: Partial<CallOptions> } {
  const { template, opts, keyOf } = prepareCall(def, when, callOpts, settings, nowMs);
  return { task: callTask(def, template, args, settings, keyOf), opts };
}

export type { TaskHandle };

/**
 * A TaskRef whose refresh() reads the result back from the connection that holds the task. It
 * keeps the connection's name, not the connection: closeConnections() must not break it.
 */
class TaskRefImpl implements TaskHandle {
  readonly #connection: string | undefined;
  constructor(
    connection: string | undefined,
    readonly id: string,
    readonly name: string,
    readonly queue: string | null,
    readonly runAt: Date,
    readonly outcome: EnqueueOutcome,
  ) {
    this.#connection = connection;
  }
  refresh(): Promise<TaskResult> {
    return getResult(this, { connection: this.#connection });
  }
  /** The named connection that holds the task (getResult(handle) reads it there). */
  get [HANDLE_CONNECTION](): string | undefined {
    return this.#connection;
  }
}

// console.log() and inspect() show the class name: show the one the docs use.
Object.defineProperty(TaskRefImpl, 'name', { value: 'TaskRef' });

function ref(connection: string | undefined, id: string, t: Pick<NewTask, 'name' | 'queue'>, runAt: number, outcome: EnqueueOutcome): TaskHandle {
  return new TaskRefImpl(connection, id, t.name, t.queue, new Date(runAt), outcome);
}

/** Emits `task:created` once the writing transaction has committed. */
function emitCreated(refs: TaskRef[], tasks: ReadonlyArray<Pick<NewTask, 'priority'>>, db: ScheduleOptions['db']): void {
  if (events.listenerCount('task:created') === 0) return;
  const emit = () => {
    refs.forEach((r, i) => {
      if (r.outcome !== 'created' && r.outcome !== 'replaced') return;
      const t = tasks[i] ?? tasks[0]!;
      events.emit('task:created', { id: r.id, name: r.name, queue: r.queue, priority: t.priority, attempt: 0, runAt: r.runAt.getTime(), outcome: r.outcome });
    });
  };
  const trx = db as Knex.Transaction | undefined;
  if (trx?.isTransaction && trx.executionPromise !== undefined) {
    trx.executionPromise.then(emit, () => {});
  } else {
    emit();
  }
}

/**
 * A schedule() left among the arguments: the call takes only the last argument as its schedule,
 * so one placed earlier, or a second one, would otherwise fail as "symbol is not JSON".
 */
function checkNoSchedule(args: readonly unknown[], where: string, hint: string): void {
  const at = args.findIndex(isSchedule);
  if (at >= 0) throw new ValidationError(`${where}argument ${at + 1} is a schedule() — ${hint}`);
}

/** Enqueues one call. */
export async function enqueueCall(def: DefinitionInternals, args: unknown[], sched: Schedule | undefined): Promise<TaskHandle> {
  checkNoSchedule(args, `${def.name}: `, `schedule() goes last, once: ${def.name}(...args, schedule(when, options))`);
  const settings = await getSettings();
  const callOpts = sched?.options ?? {};
  const nowMs = currentClock().now();
  const { task, opts } = buildTask(def, args, sched?.when, callOpts, settings, nowMs);
  task.idempotencyKey = callOpts.idempotencyKey ?? null;
  await validateForEnqueue(def.name, def.options.validate as ArgsValidator | undefined, args);
  const connection = callOpts.connection ?? def.options.connection;
  const backend = await openBackend(settings, connection);
  const db = callOpts.db;
  const explicitQueue = callOpts.queue !== undefined || def.using.queue !== undefined || def.options.queue !== undefined;
  const stored = await traced(task, null, (traceContext) => {
    task.traceContext = traceContext;
    return backend.insertCall(
      task,
      {
        action: effectiveAction(opts),
        matchQueue: explicitQueue ? task.queue : undefined,
        queueLimit: task.queue === null ? undefined : settings.maxQueueSize[task.queue],
        db,
      },
      nowMs,
    );
  });
  const result = ref(connection, stored.id, task, stored.runAt, stored.outcome);
  if (backend.emitsEvents) emitCreated([result], [task], db);
  return result;
}

/** Enqueues many calls of one definition in one transaction (chunked multi-row inserts). */
export async function enqueueBulk(
  def: DefinitionInternals,
  calls: readonly unknown[][],
  options: BulkOptions,
): Promise<TaskHandle[]> {
  if (!Array.isArray(calls)) throw new ValidationError(`${def.name}.bulk(): expected an array of argument arrays`);
  const settings = await getSettings();
  const nowMs = currentClock().now();
  if (typeof options !== 'object' || options === null) throw new ValidationError(`${def.name}.bulk(): options must be an object`);
  checkOptions(options as Record<string, unknown>, [...SCHEDULE_OPTION_KEYS, 'when'], `${def.name}.bulk() options`);
  const { when, db, connection, idempotencyKey: keyFn, ...callOpts } = options;
  checkWhen(when, `when in ${def.name}.bulk() options`);
  checkTarget(options, `${def.name}.bulk() options`);
  if (keyFn !== undefined && typeof keyFn !== 'function') {
    throw new ValidationError(
      `Invalid idempotencyKey in ${def.name}.bulk() options: ${typeof keyFn === 'string' ? JSON.stringify(keyFn) : typeof keyFn} — expected a function of each call's arguments that returns its key (one key per call; a bulk of one key would be one call)`,
    );
  }
  if ((callOpts.action !== undefined && callOpts.action !== 'schedule') || callOpts.removeExisting) {
    throw new ValidationError(
      `${def.name}.bulk(): action "${callOpts.action ?? 'replaceExisting'}" is not supported in bulk — enqueue those calls one by one`,
    );
  }
  const { template, keyOf } = prepareCall(def, when, callOpts, settings, nowMs);
  // Every call shares the template: one row of values, copied per call with its own arguments
  // (and its own concurrency key, when the definition computes one).
  const base = newTaskRow(taskWithArgs(template, '', ''));
  if (keyOf) base.concurrency_key = null;
  const columns = Object.keys(base);
  const proto = columns.map((c) => base[c]);
  const argsAt = columns.indexOf('args');
  const hashAt = columns.indexOf('hash');
  const keyAt = columns.indexOf('concurrency_key');
  const idempotencyAt = keyFn ? columns.push('idempotency_key') - 1 : -1;
  const values = calls.map((args, i) => {
    if (!Array.isArray(args)) throw new ValidationError(`${def.name}.bulk(): call ${i + 1} is not an array of arguments`);
    checkNoSchedule(args, `${def.name}.bulk(): call ${i + 1}: `, `bulk() takes the call-site options as its second parameter: ${def.name}.bulk(calls, { when, … })`);
    let argsJson: string;
    const row = proto.slice();
    try {
      argsJson = checkedArgsJson(def, args, settings);
      if (keyOf) row[keyAt] = keyOfCall(def, keyOf, args);
      if (keyFn) row.push(idempotencyKeyOfCall(def, keyFn, args));
    } catch (err) {
      if (err instanceof ValidationError) throw new ValidationError(`${def.name}.bulk(): call ${i + 1}: ${err.message}`, { cause: err });
      throw err;
    }
    row[argsAt] = argsJson;
    row[hashAt] = taskHash(def.name, argsJson);
    return row;
  });
  if (values.length === 0) return [];
  const validator = def.options.validate as ArgsValidator | undefined;
  for (let i = 0; validator && i < calls.length; i++) {
    try {
      await validateForEnqueue(def.name, validator, calls[i]!);
    } catch (err) {
      throw new ValidationError(`${def.name}.bulk(): call ${i + 1}: ${(err as Error).message}`, { cause: err });
    }
  }
  const conn = connection ?? def.options.connection;
  const backend = await openBackend(settings, conn);
  const queueLimit = template.queue === null ? undefined : settings.maxQueueSize[template.queue];
  // One producer span for the whole bulk; every row stores its context.
  const { stored } = await traced(template, values.length, async (traceContext) => {
    if (traceContext !== null) {
      template.traceContext = traceContext;
      columns.push('trace_context');
      for (const row of values) row.push(traceContext);
    }
    const calls = { template, rows: { columns, values }, argsAt, hashAt, keyAt, idempotencyAt };
    return { id: '', stored: await backend.insertCalls(calls, { queueLimit, db }, nowMs) };
  });
  const refs = stored.map((s) => ref(conn, s.id, template, s.runAt, s.outcome));
  if (backend.emitsEvents) emitCreated(refs, [template], db);
  return refs;
}

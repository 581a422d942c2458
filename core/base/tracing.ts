/**
 * OpenTelemetry traces, when the application has `@opentelemetry/api` (an optional peer
 * dependency): enqueue makes a PRODUCER span and stores its context with the task; each attempt
 * makes a CONSUMER span, a child of that context, so every attempt of a task (retries included)
 * sits in the trace of the call that enqueued it. Attribute names follow OpenTelemetry's messaging
 * conventions. The API is imported once, lazily; when it is absent everything here is a no-op,
 * and when no tracer provider is registered the API's own no-op spans cost next to nothing.
 *
 * The context is stored in the W3C Trace Context format, written and read here rather than by
 * the application's propagator: the stored text must mean the same to every process that reads
 * it, whatever propagators each one configured.
 */
import { bgtasksVersion } from './version.js';

/** The few parts of `@opentelemetry/api` used here (declared, so bgtasks' types need no OTel). */
type Context = object;

interface SpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: { serialize(): string };
}

type AttributeValue = string | number | boolean;

export interface OtelSpan {
  spanContext(): SpanContext;
  setAttribute(key: string, value: AttributeValue): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: Error | string): void;
  isRecording(): boolean;
  end(): void;
}

interface Tracer {
  startSpan(name: string, options: { kind: number; attributes?: Record<string, AttributeValue> }, context?: Context): OtelSpan;
}

export interface OtelApi {
  trace: {
    getTracer(name: string, version?: string): Tracer;
    setSpanContext(context: Context, spanContext: SpanContext): Context;
    setSpan(context: Context, span: OtelSpan): Context;
    isSpanContextValid(spanContext: SpanContext): boolean;
  };
  context: {
    active(): Context;
    with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F>;
  };
  ROOT_CONTEXT: Context;
  SpanKind: { PRODUCER: number; CONSUMER: number };
  SpanStatusCode: { ERROR: number };
  createTraceState(raw?: string): { serialize(): string };
}

const defaultLoader = async (): Promise<OtelApi> => (await import('@opentelemetry/api')) as unknown as OtelApi;
let loader: () => Promise<OtelApi> = defaultLoader;
let loading: Promise<OtelApi | null> | null = null;
/** undefined: not loaded yet; null: absent. */
let loaded: OtelApi | null | undefined;

/** Imports `@opentelemetry/api` once; null (for good) when it cannot be imported. */
export function loadTracing(): Promise<OtelApi | null> {
  loading ??= loader().then(
    (api) => (loaded = typeof api?.trace?.getTracer === 'function' ? api : null),
    () => (loaded = null),
  );
  return loading;
}

/**
 * Whether the application has set OpenTelemetry up in this process: the API registers its globals
 * (a tracer provider, a context manager, a propagator) under this symbol, shared by every copy of
 * API version 1. Its import is then a cache hit; without it, spans would record nothing yet.
 */
export function tracingSetUp(): boolean {
  return (globalThis as Record<symbol, unknown>)[Symbol.for('opentelemetry.js.api.1')] !== undefined;
}

/** The API once `loadTracing()` settled: the hot paths read it without awaiting. */
export function tracingLoaded(): OtelApi | null | undefined {
  return loaded;
}

/**
 * Tests only: how the API is imported (a rejecting loader stands for an application without
 * it); null restores the real import. The next `loadTracing()` imports again.
 */
export function setTracingLoader(fn: (() => Promise<OtelApi>) | null): void {
  loader = fn ?? defaultLoader;
  loading = null;
  loaded = undefined;
}

function tracer(api: OtelApi): Tracer {
  // Asked each time, not kept: a provider registered after the first span still gets the next.
  return api.trace.getTracer('bgtasks', bgtasksVersion() ?? undefined);
}

const hex2 = (n: number) => (n & 0xff).toString(16).padStart(2, '0');

/** The stored form of a span's context: `{"traceparent":…,"tracestate":…}`, or null when invalid. */
export function storedContext(api: OtelApi, span: OtelSpan): string | null {
  const sc = span.spanContext();
  if (!api.trace.isSpanContextValid(sc)) return null;
  const out: { traceparent: string; tracestate?: string } = { traceparent: `00-${sc.traceId}-${sc.spanId}-${hex2(sc.traceFlags)}` };
  const state = sc.traceState?.serialize();
  if (state) out.tracestate = state;
  return JSON.stringify(out);
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote parent a stored context names, or null when it is absent or cannot be read. */
export function parentContext(api: OtelApi, stored: string | null): Context | null {
  if (!stored) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return null;
  }
  const o = parsed as { traceparent?: unknown; tracestate?: unknown } | null;
  const m = typeof o?.traceparent === 'string' ? TRACEPARENT.exec(o.traceparent) : null;
  if (!m || m[1] === 'ff') return null;
  const sc: SpanContext = { traceId: m[2]!, spanId: m[3]!, traceFlags: parseInt(m[4]!, 16), isRemote: true };
  if (typeof o!.tracestate === 'string' && o!.tracestate !== '') sc.traceState = api.createTraceState(o!.tracestate);
  if (!api.trace.isSpanContextValid(sc)) return null;
  return api.trace.setSpanContext(api.ROOT_CONTEXT, sc);
}

const destination = (queue: string | null) => queue ?? 'default';

/**
 * The PRODUCER span of an enqueue (or of a bulk enqueue: one span, `count` messages), a child of
 * the application's active span. `messaging.message.id` is set once the store gave the id.
 */
export function startProducerSpan(api: OtelApi, task: { name: string; queue: string | null }, count: number | null): OtelSpan {
  const attributes: Record<string, AttributeValue> = {
    'messaging.system': 'bgtasks',
    'messaging.operation': 'publish',
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
    'messaging.destination.name': destination(task.queue),
    'bgtasks.task.name': task.name,
  };
  if (count !== null) attributes['messaging.batch.message_count'] = count;
  return tracer(api).startSpan(`send ${destination(task.queue)}`, { kind: api.SpanKind.PRODUCER, attributes }, api.context.active());
}

/** Ends a span with the error recorded and the status ERROR. */
export function failSpan(api: OtelApi, span: OtelSpan, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}

/** An attempt's CONSUMER span, and the context in which the task's function runs. */
export interface AttemptSpan {
  span: OtelSpan;
  context: Context;
}

/**
 * The CONSUMER span of one attempt: a child of the context stored at enqueue (a new trace when
 * there is none), with the task, its queue, id and attempt number, and the worker.
 */
export function startAttemptSpan(api: OtelApi, task: { id: string; name: string; queue: string | null; attempts: number; traceContext: string | null }, workerId: string): AttemptSpan {
  const parent = parentContext(api, task.traceContext) ?? api.ROOT_CONTEXT;
  const span = tracer(api).startSpan(
    `process ${destination(task.queue)}`,
    {
      kind: api.SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'bgtasks',
        'messaging.operation': 'process',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': destination(task.queue),
        'messaging.message.id': task.id,
        'bgtasks.task.name': task.name,
        'bgtasks.task.attempt': task.attempts,
        'bgtasks.worker.id': workerId,
      },
    },
    parent,
  );
  return { span, context: api.trace.setSpan(parent, span) };
}

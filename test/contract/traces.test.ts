/**
 * OpenTelemetry traces on every database, read with the SDK's in-memory exporter: enqueue makes a
 * PRODUCER span (a child of the application's active span) and stores its W3C context with the
 * task; each attempt is a CONSUMER span, a child of that producer span in the same trace, with the
 * error recorded on failure; a retry stays in the trace; a bulk enqueue is one span whose context
 * every row stores. Without the API (an application that does not install it), tasks are stored
 * and run as before, with no context stored.
 */
import { expect } from 'chai';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { background } from '../../core/index.js';
import { setTracingLoader } from '../../core/base/tracing.js';
import { failedByIds, retryFailed } from '../../core/store/admin.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const failedOnce = new Set<number>();

const traced = background({ name: 'traces.ok', queue: 'tq' }, function tracedOk(n: number) {
  // A span the task makes is a child of its attempt's span.
  trace.getTracer('app').startSpan('inside the task').end();
  return n;
});
const flaky = background({ name: 'traces.flaky', maxAttempts: 3 }, function flaky(n: number) {
  if (!failedOnce.has(n)) {
    failedOnce.add(n);
    throw new TypeError(`flaky ${n} fails once`);
  }
  return n;
});

const doomed = background({ name: 'traces.doomed', maxAttempts: 1 }, function doomed() {
  throw new Error('doomed');
});

const T0 = Date.UTC(2032, 5, 1, 8);
const NAMES = ['traces.ok', 'traces.flaky', 'traces.doomed'];

const parentId = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('traces', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();

  before(() => {
    context.setGlobalContextManager(contextManager.enable());
    trace.setGlobalTracerProvider(provider);
  });
  after(async () => {
    trace.disable();
    context.disable();
    await provider.shutdown();
  });

  contract('traces', (db) => {
    const { clock, drain } = manualClockSuite(db, T0, () => {
      failedOnce.clear();
      exporter.reset();
    });
    const spans = (kind: SpanKind) => exporter.getFinishedSpans().filter((s) => s.kind === kind);
    const storedContext = async (id: string, table: 'tasks' | 'completed' = 'completed') => {
      const row = (await db.store.knex(db.store.tables[table]).where(table === 'tasks' ? 'id' : 'task_id', id).first()) as Record<string, unknown>;
      return row.trace_context === null ? null : (JSON.parse(String(row.trace_context)) as { traceparent: string });
    };

    it('enqueue makes a producer span under the active span; the attempt is a consumer span under it, in the same trace', async () => {
      const ref = await trace.getTracer('app').startActiveSpan('request', async (request) => {
        try {
          return await traced(7);
        } finally {
          request.end();
        }
      });
      const [producer] = spans(SpanKind.PRODUCER);
      const request = exporter.getFinishedSpans().find((s) => s.name === 'request')!;
      expect(producer!.name).to.equal('send tq');
      expect(parentId(producer!)).to.equal(request.spanContext().spanId);
      expect(producer!.attributes).to.deep.include({
        'messaging.system': 'bgtasks',
        'messaging.operation': 'publish',
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'tq',
        'messaging.message.id': ref.id,
        'bgtasks.task.name': 'traces.ok',
      });
      const { spanId, traceId } = producer!.spanContext();
      expect((await storedContext(ref.id, 'tasks'))!.traceparent).to.equal(`00-${traceId}-${spanId}-01`);

      await drain({ names: NAMES, workerId: 'trace-worker' });
      const [consumer] = spans(SpanKind.CONSUMER);
      expect(consumer!.name).to.equal('process tq');
      expect(consumer!.spanContext().traceId).to.equal(traceId);
      expect(parentId(consumer!)).to.equal(spanId);
      expect(consumer!.attributes).to.deep.include({
        'messaging.system': 'bgtasks',
        'messaging.operation': 'process',
        'messaging.destination.name': 'tq',
        'messaging.message.id': ref.id,
        'bgtasks.task.name': 'traces.ok',
        'bgtasks.task.attempt': 1,
        'bgtasks.worker.id': 'trace-worker',
        'bgtasks.outcome': 'complete',
      });
      expect(consumer!.status.code).to.equal(SpanStatusCode.UNSET);
      const inner = exporter.getFinishedSpans().find((s) => s.name === 'inside the task')!;
      expect(parentId(inner)).to.equal(consumer!.spanContext().spanId);
      // The completed row keeps the context.
      expect((await storedContext(ref.id))!.traceparent).to.equal(`00-${traceId}-${spanId}-01`);
    });

    it('a failed attempt records the error with status ERROR; its retry continues the same trace', async () => {
      const ref = await flaky(1);
      const [producer] = spans(SpanKind.PRODUCER);
      expect(producer!.name).to.equal('send default');
      await drain({ names: NAMES });
      clock.advance(10);
      await drain({ names: NAMES });
      const consumers = spans(SpanKind.CONSUMER);
      expect(consumers).to.have.length(2);
      const [failed, retried] = consumers;
      for (const c of consumers) {
        expect(c.spanContext().traceId).to.equal(producer!.spanContext().traceId);
        expect(parentId(c)).to.equal(producer!.spanContext().spanId);
        expect(c.attributes['messaging.message.id']).to.equal(ref.id);
      }
      expect(failed!.attributes['bgtasks.task.attempt']).to.equal(1);
      expect(failed!.attributes['bgtasks.outcome']).to.equal('retry');
      expect(failed!.status).to.deep.include({ code: SpanStatusCode.ERROR, message: 'flaky 1 fails once' });
      const exception = failed!.events.find((e) => e.name === 'exception')!;
      expect(exception.attributes).to.deep.include({ 'exception.type': 'TypeError', 'exception.message': 'flaky 1 fails once' });
      expect(retried!.attributes['bgtasks.task.attempt']).to.equal(2);
      expect(retried!.status.code).to.equal(SpanStatusCode.UNSET);
    });

    it('an operator\'s retry of a failed task continues the trace of its enqueue', async () => {
      const ref = await doomed();
      await drain({ names: NAMES });
      const [producer] = spans(SpanKind.PRODUCER);
      const [{ newId }] = await retryFailed(db.store, await failedByIds(db.store, [ref.id], T0), T0);
      expect((await storedContext(newId, 'tasks'))!.traceparent).to.equal(`00-${producer!.spanContext().traceId}-${producer!.spanContext().spanId}-01`);
      await drain({ names: NAMES });
      const consumers = spans(SpanKind.CONSUMER);
      expect(consumers).to.have.length(2);
      for (const c of consumers) expect(parentId(c)).to.equal(producer!.spanContext().spanId);
      expect(consumers.map((c) => c.attributes['messaging.message.id'])).to.deep.equal([ref.id, newId]);
      expect(consumers.every((c) => c.status.code === SpanStatusCode.ERROR)).to.equal(true);
    });

    it('a bulk enqueue is one producer span; each row stores its context, and each attempt is its child', async () => {
      const refs = await traced.bulk([[1], [2], [3]]);
      const producers = spans(SpanKind.PRODUCER);
      expect(producers).to.have.length(1);
      expect(producers[0]!.attributes['messaging.batch.message_count']).to.equal(3);
      const { traceId, spanId } = producers[0]!.spanContext();
      for (const r of refs) expect((await storedContext(r.id, 'tasks'))!.traceparent).to.equal(`00-${traceId}-${spanId}-01`);
      await drain({ names: NAMES });
      const consumers = spans(SpanKind.CONSUMER);
      expect(consumers.map((c) => c.attributes['messaging.message.id']).sort()).to.deep.equal(refs.map((r) => r.id).sort());
      for (const c of consumers) expect(parentId(c)).to.equal(spanId);
    });

    it('a stored context that cannot be read starts a new trace; the task runs', async () => {
      const ref = await traced(3);
      await db.store.knex(db.store.tables.tasks).where('id', ref.id).update({ trace_context: 'not a context' });
      await drain({ names: NAMES });
      const [consumer] = spans(SpanKind.CONSUMER);
      expect(parentId(consumer!)).to.equal(undefined);
      expect(consumer!.spanContext().traceId).to.not.equal(spans(SpanKind.PRODUCER)[0]!.spanContext().traceId);
      expect((await ref.refresh()).status).to.equal('SUCCESSFUL');
    });

    describe('without @opentelemetry/api', () => {
      before(() => setTracingLoader(() => Promise.reject(new Error("Cannot find package '@opentelemetry/api'"))));
      after(() => setTracingLoader(null));

      it('stores and runs tasks as before, with no context and no span', async () => {
        const ref = await traced(5);
        const bulk = await flaky.bulk([[8]]);
        expect(await storedContext(ref.id, 'tasks')).to.equal(null);
        expect(await storedContext(bulk[0]!.id, 'tasks')).to.equal(null);
        await drain({ names: NAMES });
        clock.advance(10);
        await drain({ names: NAMES });
        expect((await ref.refresh()).status).to.equal('SUCCESSFUL');
        expect((await bulk[0]!.refresh()).status).to.equal('SUCCESSFUL');
        expect(await storedContext(ref.id)).to.equal(null);
        expect(exporter.getFinishedSpans().filter((s) => s.name !== 'inside the task')).to.deep.equal([]);
      });
    });
  });
});

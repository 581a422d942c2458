/**
 * What `why`/`explain(id)` needs to know of one task, read from the database: its row, its queue's
 * row, what runs in the scopes of its limits, the starts in its rate windows, how many due tasks a
 * worker would claim before it, and the workers of the registry. policy/why.ts turns it into
 * reasons.
 */
import { TaskNotFoundError } from '../errors.js';
import { limitersFor, type TaskLimits } from '../policy/flow.js';
import { isLiveState, workerState } from '../policy/status.js';
import type { WhyFacts, WhyWorker } from '../policy/why.js';
import { queueRecords } from './queues.js';
import type { Store } from './store.js';
import { listWorkers } from './workers.js';

/** How far back the registry is read (live workers, and those gone within a day). */
const WORKERS_SINCE_MS = 86_400_000;

/** What the claim's settings say: the attempt limit of tasks that set none, and the claim order. */
export interface WhySettings {
  maxAttempts: number;
  priorityOrdering: 'DESC' | 'ASC';
}

export async function whyFacts(store: Store, id: string, nowMs: number, settings: WhySettings): Promise<WhyFacts> {
  const defaultMaxAttempts = settings.maxAttempts;
  const pending = await store.retrying(() => store.findPending(id));
  if (!pending) {
    const done = await store.retrying(() => store.findCompleted(id));
    if (!done) throw new TaskNotFoundError(`No task with id ${id} (pending or completed) in ${store.conn.spec.display}`);
    return {
      nowMs,
      pending: null,
      finished: { id, name: done.name, status: done.failedAt === null ? 'SUCCESSFUL' : 'FAILED', finishedAt: done.finishedAt },
      queue: null,
      taskLimits: undefined,
      runningBy: {},
      startsBy: {},
      ahead: 0,
      workers: [],
      maxAttempts: defaultMaxAttempts,
    };
  }
  const t = pending;
  const records = await listWorkers(store, nowMs - WORKERS_SINCE_MS);
  const workers: WhyWorker[] = records.map((w) => ({
    id: w.id,
    names: w.names,
    queues: w.queues,
    excludeQueues: w.excludeQueues,
    heartbeatAt: w.heartbeatAt,
    heartbeatMs: w.heartbeatMs,
    stoppedAt: w.stoppedAt,
    aliveAt: w.aliveAt,
    livenessMs: w.livenessMs,
    runUntil: w.runUntil,
    maxRunTimeMs: Object.fromEntries(Object.entries(w.limits).flatMap(([n, l]) => (l.maxRunTime ? [[n, Math.round(l.maxRunTime * 1000)]] : []))),
  }));
  // The name's limits as a live worker (else the latest one) declares them.
  const declaring = [...records].sort((a, b) => Number(isLiveState(workerState(b, nowMs))) - Number(isLiveState(workerState(a, nowMs)))).find((w) => w.limits[t.name]);
  const declared = declaring?.limits[t.name];
  const taskLimits: TaskLimits | undefined = declared && (declared.concurrency || declared.rateLimit || declared.concurrencyLimit) ? declared : undefined;
  const queue = t.queue === null ? null : ((await queueRecords(store)).find((q) => q.name === t.queue) ?? null);
  const limiters = limitersFor({ name: t.name, queue: t.queue, key: t.concurrencyKey }, taskLimits, queue ?? undefined);
  const runningBy: Record<string, string[]> = {};
  const startsBy: Record<string, number[]> = {};
  for (const l of limiters) {
    if (l.kind === 'concurrency') {
      const q = store.knex(store.tables.tasks).select('id').whereNotNull('locked_by').where('locked_until', '>', nowMs).orderBy('id');
      if (l.scope.startsWith('queue ')) q.where('queue', t.queue);
      else q.where('name', t.name);
      if (l.scope.includes(' key ')) q.where('concurrency_key', t.concurrencyKey);
      runningBy[l.id] = ((await store.retrying(() => q)) as Array<{ id: unknown }>).map((r) => String(r.id));
    } else {
      const rows = (await store.retrying(() =>
        store.knex(store.tables.rateStarts).select('started_at').where('limiter', l.id).where('started_at', '>', nowMs - l.periodMs!),
      )) as Array<{ started_at: unknown }>;
      startsBy[l.id] = rows.map((r) => Number(r.started_at));
    }
  }
  // Due, unclaimed tasks of its queue that the claim order puts first (ASC: lower numbers first).
  const before = settings.priorityOrdering === 'ASC' ? '<' : '>';
  const ahead = store
    .knex(store.tables.tasks)
    .whereNull('locked_by')
    .where('run_at', '<=', nowMs)
    .whereNot('id', t.id)
    .where((b) =>
      b
        .where('priority', before, t.priority)
        .orWhere((b2) => b2.where('priority', t.priority).where('run_at', '<', t.runAt))
        .orWhere((b3) => b3.where('priority', t.priority).where('run_at', t.runAt).where('id', '<', t.id)),
    );
  if (t.queue === null) ahead.whereNull('queue');
  else ahead.where('queue', t.queue);
  const [{ n }] = (await store.retrying(() => ahead.count({ n: '*' }))) as Array<{ n: unknown }>;
  const maxAttempts = t.maxAttempts ?? declared?.maxAttempts ?? defaultMaxAttempts;
  return { nowMs, pending: t, finished: null, queue, taskLimits, runningBy, startsBy, ahead: Number(n), workers, maxAttempts };
}

/**
 * The worker registry's verbs: a worker registers when it starts, beats on its heartbeat timer,
 * and says goodbye on a clean stop; readers list the live and recently gone; old rows are pruned.
 * Liveness is judged by policy/status.ts workerState.
 */
import type { TaskLimits } from '../policy/flow.js';
import type { Store } from './store.js';

export interface WorkerRecord {
  id: string;
  host: string;
  pid: number | null;
  version: string | null;
  /** The queues it claims from; null: every queue. */
  queues: string[] | null;
  excludeQueues: string[] | null;
  /** The task names its task files register. */
  names: string[];
  /** The limits those definitions declare, by name. */
  limits: Record<string, TaskLimits>;
  concurrency: number;
  startedAt: number;
  heartbeatAt: number;
  heartbeatMs: number;
  runUntil: number | null;
  stoppedAt: number | null;
  /** Linux: its pid namespace (worker/process-identity.ts); null elsewhere. Written, not read back here. */
  pidNamespace?: string | null;
  /**
   * Its liveness beat (policy/liveness.ts): when the last one that landed was sent, and its
   * livenessTimeout in ms. Read back only; null until its first beat, and for a worker without one.
   */
  aliveAt?: number | null;
  livenessMs?: number | null;
}

const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

function parse<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function recordOf(r: Record<string, unknown>): WorkerRecord {
  return {
    id: String(r.id),
    host: String(r.host),
    pid: numOrNull(r.pid),
    version: r.version === null || r.version === undefined ? null : String(r.version),
    queues: parse<string[] | null>(r.queues, null),
    excludeQueues: parse<string[] | null>(r.exclude_queues, null),
    names: parse<string[]>(r.names, []),
    limits: parse<Record<string, TaskLimits>>(r.limits, {}),
    concurrency: Number(r.concurrency),
    startedAt: Number(r.started_at),
    heartbeatAt: Number(r.heartbeat_at),
    heartbeatMs: Number(r.heartbeat_ms),
    runUntil: numOrNull(r.run_until),
    stoppedAt: numOrNull(r.stopped_at),
    aliveAt: numOrNull(r.alive_at),
    livenessMs: numOrNull(r.liveness_ms),
  };
}

/**
 * Registers (or re-registers) a worker as starting now. Its liveness beat is cleared: a row left
 * by an earlier process under the same worker id says nothing about this one, which has no beat
 * until its thread's first one lands (beatAlive).
 */
export async function registerWorker(store: Store, w: Omit<WorkerRecord, 'stoppedAt'>): Promise<void> {
  const row = {
    id: w.id,
    host: w.host,
    pid: w.pid,
    version: w.version,
    queues: json(w.queues),
    exclude_queues: json(w.excludeQueues),
    names: JSON.stringify(w.names),
    limits: json(w.limits),
    concurrency: w.concurrency,
    started_at: w.startedAt,
    heartbeat_at: w.heartbeatAt,
    heartbeat_ms: w.heartbeatMs,
    run_until: w.runUntil,
    stopped_at: null,
    pid_ns: w.pidNamespace ?? null,
    alive_at: null,
    liveness_ms: null,
  };
  const { id: _id, ...rest } = row;
  await store.retrying(() => store.knex(store.tables.workers).insert(row).onConflict('id').merge(Object.keys(rest)));
}

/** One heartbeat: false when the row is gone (pruned while the worker was cut off), to register again. */
export async function beatWorker(store: Store, id: string, nowMs: number): Promise<boolean> {
  const n = await store.retrying(() => store.knex(store.tables.workers).where('id', id).update({ heartbeat_at: nowMs, stopped_at: null }));
  return n > 0;
}

/**
 * One liveness beat, sent from the worker's liveness thread on a connection of its own: `alive_at`
 * never goes back (a beat whose answer was late must not undo a newer one), and `liveness_ms`
 * says how long a silence means the worker is gone. False when the row is gone (the registration
 * writes it again).
 */
export async function beatAlive(store: Pick<Store, 'knex' | 'tables'>, id: string, nowMs: number, livenessMs: number): Promise<boolean> {
  const n = await store
    .knex(store.tables.workers)
    .where('id', id)
    .update({ alive_at: store.knex.raw('CASE WHEN alive_at > ? THEN alive_at ELSE ? END', [nowMs, nowMs]), liveness_ms: livenessMs });
  return n > 0;
}

/** A clean stop. */
export async function stopWorker(store: Store, id: string, nowMs: number): Promise<void> {
  await store.retrying(() => store.knex(store.tables.workers).where('id', id).update({ heartbeat_at: nowMs, stopped_at: nowMs }));
}

/** Workers that beat at or after `sinceMs` (live ones, and those gone since), newest first. */
export async function listWorkers(store: Store, sinceMs: number): Promise<WorkerRecord[]> {
  const rows = (await store.retrying(() =>
    store.knex(store.tables.workers).select('*').where('heartbeat_at', '>=', sinceMs).orderBy([{ column: 'started_at', order: 'desc' }, { column: 'id' }]),
  )) as Record<string, unknown>[];
  return rows.map(recordOf);
}

/** Deletes rows whose last heartbeat is older than `beforeMs`. */
export async function pruneWorkers(store: Store, beforeMs: number): Promise<number> {
  return store.retrying(() => store.knex(store.tables.workers).where('heartbeat_at', '<', beforeMs).del());
}

/** A task a worker runs now. */
export interface RunningTask {
  id: string;
  name: string;
  queue: string | null;
  startedAt: number;
}

/** RUNNING tasks (live leases) by worker id (one query through the lease index). */
export async function runningByWorker(store: Store, nowMs: number): Promise<Map<string, RunningTask[]>> {
  const rows = (await store.retrying(() =>
    store.knex(store.tables.tasks).select('id', 'name', 'queue', 'locked_by', 'locked_at').whereNotNull('locked_by').where('locked_until', '>', nowMs).orderBy('id'),
  )) as Array<{ id: unknown; name: string; queue: string | null; locked_by: string; locked_at: unknown }>;
  const out = new Map<string, RunningTask[]>();
  for (const r of rows) {
    let list = out.get(r.locked_by);
    if (!list) out.set(r.locked_by, (list = []));
    list.push({ id: String(r.id), name: r.name, queue: r.queue, startedAt: Number(r.locked_at) });
  }
  return out;
}

/**
 * "Why isn't my task running?" as a pure function: from what the store read about one task (its
 * row, its queue, what runs in its limits' scopes, the starts in its rate windows, the live
 * workers), every reason it is not running now, each with a code, a sentence and the values
 * behind it. The claim applies the same rules (store/claim.ts, policy/flow.ts); this explains them.
 */
import { limitersFor, rateWindow, type Limiter, type QueueLimits, type TaskLimits } from './flow.js';
import { hasLiveLease, isLiveState, workerState, type WorkerBeat, type WorkerState } from './status.js';
import type { Status, TaskRow } from '../types.js';

export type WhyCode =
  | 'running'
  | 'cancel-requested'
  | 'finished'
  | 'not-due'
  | 'expired'
  | 'lease-expired'
  | 'queue-paused'
  | 'concurrency-full'
  | 'rate-limited'
  | 'tasks-ahead'
  | 'no-worker'
  | 'run-budget'
  | 'attempts-used-up';

export interface WhyReason {
  code: WhyCode;
  /** One sentence for an operator. */
  message: string;
  /** The values behind it (times as ISO strings, ids, counts). */
  details: Record<string, unknown>;
}

export interface WhyAnswer {
  id: string;
  name: string;
  status: Status;
  /** True when nothing keeps it from running (RUNNING counts as runnable: it runs now). */
  runnable: boolean;
  reasons: WhyReason[];
}

/** A live or recent worker as the registry says (what `why` needs of it). */
export interface WhyWorker extends WorkerBeat {
  id: string;
  names: string[];
  queues: string[] | null;
  excludeQueues: string[] | null;
  /** Epoch ms after which a duration run takes no more tasks; null for an unbounded run. */
  runUntil: number | null;
  /** Each name's run-time limit there (ms), as that worker's task files define it. */
  maxRunTimeMs: Record<string, number>;
}

export interface WhyFacts {
  nowMs: number;
  pending: TaskRow | null;
  finished: { id: string; name: string; status: 'SUCCESSFUL' | 'FAILED'; finishedAt: number } | null;
  queue: (QueueLimits & { name: string }) | null;
  /** The task name's limits, as live workers declare them (undefined: none known). */
  taskLimits: TaskLimits | undefined;
  /** RUNNING tasks counted by each of the task's concurrency limiters (by limiter id). */
  runningBy: Record<string, string[]>;
  /** Start times within each of its rate limiters' windows (by limiter id). */
  startsBy: Record<string, number[]>;
  /** Due READY tasks that a worker claims before this one (higher priority, or earlier). */
  ahead: number;
  workers: WhyWorker[];
  /** The effective attempt limit (task, definition or setting). */
  maxAttempts: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function serves(w: WhyWorker, name: string, queue: string | null): boolean {
  if (!w.names.includes(name)) return false;
  if (w.queues) return queue !== null && w.queues.includes(queue);
  return !(queue !== null && (w.excludeQueues ?? []).includes(queue));
}

function limiterReason(l: Limiter, f: WhyFacts): WhyReason | null {
  if (l.kind === 'concurrency') {
    const holders = f.runningBy[l.id] ?? [];
    if (holders.length < l.limit) return null;
    return {
      code: 'concurrency-full',
      message: `the concurrency limit of ${l.scope} (${l.limit}) is full: running ${holders.join(', ')}`,
      details: { scope: l.scope, limit: l.limit, running: holders },
    };
  }
  const w = rateWindow(f.startsBy[l.id] ?? [], l.limit, l.periodMs!, f.nowMs);
  if (w.room > 0) return null;
  return {
    code: 'rate-limited',
    message: `the rate limit of ${l.scope} (${l.limit} per ${l.periodMs! / 1000} s) is used up; its window reopens at ${iso(w.reopensAt!)}`,
    details: { scope: l.scope, limit: l.limit, periodSeconds: l.periodMs! / 1000, reopensAt: iso(w.reopensAt!) },
  };
}

/** What `why` adds about the worker of a running task, when its state is not plainly alive. */
function workerNote(state: WorkerState | null, leaseUntil: number, aliveAt: number | null): string {
  if (state === null || state === 'alive') return '';
  if (state === 'blocked') {
    return ` (the worker's event loop looks blocked: its heartbeat stopped, but its liveness beat landed at ${iso(aliveAt!)}, so its process lives; it renews the lease once the loop turns, and the task is recoverable from ${iso(leaseUntil)} if it does not)`;
  }
  return ` (the worker looks ${state}: the task is recoverable from ${iso(leaseUntil)})`;
}

/** Every reason the task is not running now. */
export function explain(f: WhyFacts): WhyAnswer {
  if (!f.pending) {
    const d = f.finished!;
    return {
      id: d.id,
      name: d.name,
      status: d.status,
      runnable: false,
      reasons: [{ code: 'finished', message: `it has finished: ${d.status} at ${iso(d.finishedAt)}; it will not run again (retry it to run a copy)`, details: { finishedAt: iso(d.finishedAt) } }],
    };
  }
  const t = f.pending;
  const reasons: WhyReason[] = [];
  const live = f.workers.filter((w) => isLiveState(workerState(w, f.nowMs)));
  if (hasLiveLease(t, f.nowMs)) {
    const w = f.workers.find((x) => x.id === t.lockedBy);
    const state = w ? workerState(w, f.nowMs) : null;
    reasons.push({
      code: 'running',
      message:
        `it is running on worker ${t.lockedBy} since ${iso(t.lockedAt ?? f.nowMs)}; its lease runs to ${iso(t.lockedUntil!)}` +
        (w ? `, the worker's last heartbeat was at ${iso(w.heartbeatAt)}${workerNote(state, t.lockedUntil!, w.aliveAt ?? null)}` : ''),
      details: { workerId: t.lockedBy, startedAt: iso(t.lockedAt ?? f.nowMs), leaseUntil: iso(t.lockedUntil!), workerHeartbeatAt: w ? iso(w.heartbeatAt) : null, workerState: state },
    });
    if (t.cancelRequested) reasons.push({ code: 'cancel-requested', message: 'a cancel was requested: its worker stops it at its next heartbeat', details: {} });
    return { id: t.id, name: t.name, status: 'RUNNING', runnable: true, reasons };
  }
  if (t.lockedBy !== null) {
    reasons.push({
      code: 'lease-expired',
      message: `its worker ${t.lockedBy} stopped renewing the lease at ${iso(t.lockedUntil ?? f.nowMs)}: a worker's next recovery pass makes it claimable`,
      details: { workerId: t.lockedBy, leaseUntil: iso(t.lockedUntil ?? f.nowMs) },
    });
  }
  if (t.runAt > f.nowMs) reasons.push({ code: 'not-due', message: `it is not due until ${iso(t.runAt)}`, details: { runAt: iso(t.runAt) } });
  if (t.expiresAt !== null && t.expiresAt <= f.nowMs) {
    reasons.push({ code: 'expired', message: `it expired at ${iso(t.expiresAt)}: the next worker to claim it fails it (ExpiredError) without running it`, details: { expiresAt: iso(t.expiresAt) } });
  }
  // A READY task's next claim counts attempt attempts + 1; when that reaches maxAttempts, its
  // failure is final. Said only of a task that has failed before (a fresh task with maxAttempts 1
  // is not worth a warning).
  if (t.attempts > 0 && t.attempts + 1 >= f.maxAttempts) {
    reasons.push({
      code: 'attempts-used-up',
      message: `its attempts are used up but the last (${t.attempts} of ${f.maxAttempts} used): one more failure fails it for good`,
      details: { attempts: t.attempts, maxAttempts: f.maxAttempts },
    });
  }
  if (f.queue?.paused) reasons.push({ code: 'queue-paused', message: `its queue ${f.queue.name} is paused (bgtasks queues resume ${f.queue.name})`, details: { queue: f.queue.name } });
  for (const l of limitersFor({ name: t.name, queue: t.queue, key: t.concurrencyKey }, f.taskLimits, f.queue ?? undefined)) {
    const r = limiterReason(l, f);
    if (r) reasons.push(r);
  }
  const servers = live.filter((w) => serves(w, t.name, t.queue));
  if (servers.length === 0) {
    reasons.push({
      code: 'no-worker',
      message: `no live worker runs ${t.name}${t.queue === null ? '' : ` from queue ${t.queue}`} (bgtasks workers lists them)`,
      details: { name: t.name, queue: t.queue, liveWorkers: live.length },
    });
  } else {
    const fits = (w: WhyWorker) => {
      if (w.runUntil === null) return true;
      const need = t.maxRunTime !== null ? t.maxRunTime * 1000 : (w.maxRunTimeMs[t.name] ?? 0);
      return need <= w.runUntil - f.nowMs;
    };
    if (!servers.some(fits)) {
      reasons.push({
        code: 'run-budget',
        message: `every live worker that runs it is a --duration run whose time left is shorter than its maxRunTime: the next launch takes it`,
        details: { workers: servers.map((w) => w.id) },
      });
    }
  }
  if (f.ahead > 0 && t.runAt <= f.nowMs) {
    reasons.push({ code: 'tasks-ahead', message: `${f.ahead} due task(s) are claimed before it (higher priority, or due earlier)`, details: { ahead: f.ahead } });
  }
  // Tasks ahead only delay it; every other reason blocks it.
  const blocking = reasons.filter((r) => r.code !== 'tasks-ahead' && r.code !== 'lease-expired' && r.code !== 'attempts-used-up');
  return { id: t.id, name: t.name, status: 'READY', runnable: blocking.length === 0, reasons };
}

/**
 * The DashboardSource over a real database: every read and action is one of store/'s functions
 * (the same as the CLI's), mapped here to the source's types. The store may be given, or opened
 * on first use from settings (so `createDashboard` stays synchronous).
 */
import { isTaskIdText } from '../base/task-id.js';
import { queueMetrics, type QueueMetrics } from '../api/metrics.js';
import { bgtasksVersion } from '../base/version.js';
import { ValidationError } from '../errors.js';
import { nextCronSlot } from '../policy/cron.js';
import { isLiveState, pendingStatus, workerState } from '../policy/status.js';
import { collectStats } from '../store/admin.js';
import { chainNeighbours, failureGroups, finishedPerMinute, namesAndQueues, nextPendingBySchedule } from '../store/dashboard-reads.js';
import { listSchedules, pendingBySchedule } from '../store/schedules.js';
import type { Store } from '../store/store.js';
import { countTaskMatches, taskPage, type PageRow } from '../store/task-pages.js';
import { pageFilterOf } from './database-filter.js';
import { taskDetail } from '../store/task-detail.js';
import { listWorkers, runningByWorker, type WorkerRecord } from '../store/workers.js';
import { actOn } from './database-actions.js';
import type {
  ActionResult,
  ActionTarget,
  AttemptRecord,
  CronSchedule,
  DashboardSource,
  FailureGroup,
  FailureGroupQuery,
  FilterChoices,
  Overview,
  SourceInfo,
  TaskDetail,
  TaskFilter,
  TaskPage,
  TaskPageRequest,
  TaskSummary,
  WorkerInfo,
  WorkerList,
} from './source.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** Gone workers are shown for a day, as `bgtasks workers --all` lists them. */
const GONE_SHOWN_MS = 86_400_000;
/** A schedule no worker declared for this long is stale (as `bgtasks schedules` says). */
const STALE_MS = 600_000;
/** How long the filter form's suggestions (task names, queues) are reused. */
const CHOICES_KEPT_MS = 30_000;

type Stats = Awaited<ReturnType<typeof collectStats>>;

export interface DatabaseSourceOptions {
  /** The store, or a function that opens it (called once, on first use). */
  store: Store | (() => Promise<Store>);
  /** The database as shown in the footer (a password already masked). Default: the store's display form. */
  display?: string;
  /** Epoch ms. Default Date.now. */
  now?: () => number;
  /**
   * The per-queue counts of the overview count whole tables, which takes a second on a million
   * rows: they are reused for this long (ms), and once older, answered from the last count while
   * a new one runs (so no page waits for it). 0: counted for every overview. Default 5000.
   */
  countsMaxAgeMs?: number;
}

const d = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

function summaryOf(r: PageRow): TaskSummary {
  return {
    id: r.id,
    name: r.name,
    verboseName: r.verboseName,
    status: r.status,
    queue: r.queue,
    priority: r.priority,
    attempts: r.attempts,
    argsPreview: r.argsHead,
    argsTruncated: r.argsTruncated,
    enqueuedAt: new Date(r.enqueuedAt),
    runAt: new Date(r.runAt),
    startedAt: d(r.startedAt),
    finishedAt: d(r.finishedAt),
    workerId: r.workerId,
    lastError: r.lastError,
    cancelRequested: r.cancelRequested,
  };
}

/** Attempts as far as the store keeps them: each error record, then the current or final run. */
function attemptsOf(t: Awaited<ReturnType<typeof taskDetail>>): AttemptRecord[] {
  const out: AttemptRecord[] = (t.errors ?? []).map((e) => ({
    attempt: e.attempt,
    workerId: e.workerId,
    startedAt: null,
    endedAt: e.at,
    outcome: e.exceptionClass === 'WorkerLostError' ? ('lost' as const) : ('failed' as const),
  }));
  const recorded = new Set(out.map((a) => a.attempt));
  if (t.status === 'RUNNING') out.push({ attempt: t.attempts, workerId: t.workerId, startedAt: t.startedAt, endedAt: null, outcome: 'running' });
  else if (t.status === 'SUCCESSFUL') out.push({ attempt: t.attempts, workerId: t.workerId, startedAt: t.startedAt, endedAt: t.finishedAt, outcome: 'succeeded' });
  else if (t.status === 'FAILED' && recorded.has(t.attempts)) {
    const last = out.find((a) => a.attempt === t.attempts && a.outcome === 'failed');
    if (last) last.startedAt = t.startedAt;
  }
  return out.sort((a, b) => a.attempt - b.attempt);
}

function workerInfo(w: WorkerRecord, nowMs: number, running: Map<string, Array<{ id: string; name: string; queue: string | null; startedAt: number }>>): WorkerInfo {
  const state = workerState(w, nowMs);
  return {
    id: w.id,
    host: w.host,
    pid: w.pid,
    version: w.version,
    queues: w.queues,
    concurrency: w.concurrency,
    startedAt: new Date(w.startedAt),
    lastHeartbeatAt: new Date(w.heartbeatAt),
    state,
    goneAt: isLiveState(state) ? null : new Date(w.stoppedAt ?? w.heartbeatAt),
    running: isLiveState(state) ? (running.get(w.id) ?? []).map((r) => ({ id: r.id, name: r.name, queue: r.queue, startedAt: new Date(r.startedAt) })) : [],
  };
}

export class DatabaseSource implements DashboardSource {
  private storePromise: Promise<Store> | null = null;
  private opened: Store | null = null;
  private choices: { at: number; value: FilterChoices } | null = null;
  private counts: { at: number; value: Stats } | null = null;
  private counting: Promise<Stats> | null = null;
  private readonly now: () => number;
  private gauges: QueueMetrics | null = null;

  constructor(private readonly options: DatabaseSourceOptions) {
    this.now = options.now ?? Date.now;
    if (typeof options.store !== 'function') {
      this.opened = options.store;
      this.storePromise = Promise.resolve(options.store);
    }
  }

  /** The store, opened on first use (a failed open is tried again next time). */
  store(): Promise<Store> {
    if (!this.storePromise) {
      const open = this.options.store as () => Promise<Store>;
      this.storePromise = open().then(
        (store) => (this.opened = store),
      );
      this.storePromise.catch((err: unknown) => {
        this.storePromise = null;
        void err;
      });
    }
    return this.storePromise;
  }

  describe(): SourceInfo {
    const display = this.options.display ?? this.opened?.conn.spec.display ?? 'the configured database';
    const version = bgtasksVersion();
    return version === null ? { database: display } : { database: display, version };
  }

  async overview(): Promise<Overview> {
    const store = await this.store();
    const now = this.now();
    const stats = await this.stats(store, now);
    const startMinute = Math.floor(now / MINUTE_MS) * MINUTE_MS - 59 * MINUTE_MS;
    const minutes = new Map((await finishedPerMinute(store, startMinute, now)).map((m) => [m.minute, m]));
    const throughput = Array.from({ length: 60 }, (_, i) => {
      const minute = startMinute + i * MINUTE_MS;
      const m = minutes.get(minute);
      return { minute: new Date(minute), succeeded: m?.succeeded ?? 0, failed: m?.failed ?? 0 };
    });
    const workers = await listWorkers(store, now - HOUR_MS);
    return {
      at: stats.at,
      queues: stats.queues,
      totals: stats.totals,
      oldestDue: stats.oldestDue,
      failuresLastHour: stats.failuresLastHour,
      throughput,
      workersAlive: workers.filter((w) => isLiveState(workerState(w, now))).length,
    };
  }

  /** The counts of collectStats, reused and refreshed as `countsMaxAgeMs` says. */
  private async stats(store: Store, now: number): Promise<Stats> {
    const maxAge = this.options.countsMaxAgeMs ?? 5000;
    const fresh = (): Promise<Stats> => {
      if (!this.counting) {
        const at = this.now();
        this.counting = collectStats(store, at)
          .then((value) => {
            this.counts = { at, value };
            return value;
          })
          .finally(() => (this.counting = null));
      }
      return this.counting;
    };
    if (maxAge <= 0 || !this.counts) return fresh();
    const age = now - this.counts.at;
    if (age < 0 || age > maxAge) {
      // Stale: answered now, counted again in the background (a failure shows on a later call).
      fresh().catch(() => undefined);
    }
    return this.counts.value;
  }

  async listTasks(r: TaskPageRequest): Promise<TaskPage> {
    if (!Number.isInteger(r.limit) || r.limit < 1 || r.limit > 500) throw new ValidationError(`page size must be from 1 to 500, not ${String(r.limit)}`);
    const page = await taskPage(await this.store(), { filter: pageFilterOf(r.filter), sort: r.sort, limit: r.limit, cursor: r.cursor }, this.now());
    return { rows: page.rows.map(summaryOf), next: page.next, prev: page.prev };
  }

  async countTasks(filter: TaskFilter): Promise<number> {
    return countTaskMatches(await this.store(), pageFilterOf(filter), this.now());
  }

  async getTask(id: string): Promise<TaskDetail | null> {
    if (!isTaskIdText(id)) return null;
    const store = await this.store();
    const now = this.now();
    let t: Awaited<ReturnType<typeof taskDetail>>;
    try {
      t = await taskDetail(store, id, now);
    } catch (err) {
      if ((err as { name?: string }).name === 'TaskNotFoundError') return null;
      throw err;
    }
    const pending = t.status === 'READY' || t.status === 'RUNNING' ? await store.findPending(id) : null;
    const done = pending ? null : await store.findCompleted(id);
    const stored = pending ?? done;
    const recurringKey = stored?.recurringKey ?? null;
    const chain = await chainNeighbours(store, { id, name: t.name, hash: t.hash, repeating: t.repeat !== null, recurringKey });
    const lease =
      pending && pending.lockedBy !== null && pending.lockedUntil !== null && pendingStatus(pending, now) === 'RUNNING'
        ? { workerId: pending.lockedBy, lockedAt: d(pending.lockedAt), until: new Date(pending.lockedUntil) }
        : null;
    return {
      id: t.id,
      name: t.name,
      verboseName: t.verboseName,
      status: t.status,
      queue: t.queue,
      priority: t.priority,
      args: stored?.args ?? JSON.stringify(t.args),
      hash: t.hash,
      creator: t.creator,
      attempts: t.attempts,
      maxAttempts: t.maxAttempts,
      enqueuedAt: t.enqueuedAt,
      scheduledAt: t.scheduledAt,
      runAt: t.runAt,
      startedAt: t.startedAt,
      finishedAt: t.finishedAt,
      failedAt: t.failedAt,
      expiresAt: t.expiresAt,
      workerId: t.workerId,
      lease,
      cancelRequested: t.cancelRequested,
      repeat: t.repeat,
      recurringKey,
      predecessorId: chain.predecessorId,
      successorId: chain.successorId,
      result: done && done.failedAt === null ? done.returnValue : null,
      errors: (t.errors ?? []).map((e) => ({ class: e.exceptionClass, message: e.message, stack: e.traceback, attempt: e.attempt, at: e.at, workerId: e.workerId })),
      attemptHistory: attemptsOf(t),
    };
  }

  async failureGroups(q: FailureGroupQuery): Promise<FailureGroup[]> {
    const rows = await failureGroups(await this.store(), q.since ? q.since.getTime() : null, q.limit);
    return rows.map((g) => ({ ...g, lastFailedAt: new Date(g.lastFailedAt) }));
  }

  async schedules(): Promise<CronSchedule[]> {
    const store = await this.store();
    const now = this.now();
    const rows = await listSchedules(store);
    const counts = await pendingBySchedule(store);
    const next = await nextPendingBySchedule(store);
    return rows.map((r) => {
      const key = `${r.name}\u0000${r.key}`;
      let nextSlot: number | null;
      try {
        nextSlot = nextCronSlot(r.cron, r.timezone, Math.max(r.lastSlot ?? now, now - 1));
      } catch {
        // A row written by a newer bgtasks may hold a rule this version cannot read.
        nextSlot = null;
      }
      const p = next.get(key);
      return {
        name: r.name,
        key: r.key,
        cron: r.cron,
        timezone: r.timezone,
        args: r.args,
        catchUp: r.catchUp,
        lastSlot: d(r.lastSlot),
        nextSlot: d(nextSlot),
        pendingTask: p ? { id: p.id, status: pendingStatus(p, now), runAt: new Date(p.runAt) } : null,
        pendingCount: counts.get(key) ?? 0,
        lastSeenAt: new Date(r.updatedAt),
        lastSeenBy: r.updatedBy,
        stale: now - r.updatedAt > STALE_MS,
      };
    });
  }

  async workers(): Promise<WorkerList> {
    const store = await this.store();
    const now = this.now();
    const running = await runningByWorker(store, now);
    const all = (await listWorkers(store, now - GONE_SHOWN_MS)).map((w) => workerInfo(w, now, running));
    return { alive: all.filter((w) => isLiveState(w.state)), gone: all.filter((w) => !isLiveState(w.state)) };
  }

  /**
   * Suggestions only, read with DISTINCT over both tables (a scan of each on some databases), so
   * kept for CHOICES_KEPT_MS rather than read on every page.
   */
  async filterChoices(): Promise<FilterChoices> {
    const now = this.now();
    if (this.choices && now - this.choices.at < CHOICES_KEPT_MS && now >= this.choices.at) return this.choices.value;
    const { names, queues } = await namesAndQueues(await this.store(), 200);
    this.choices = { at: now, value: { taskNames: names, queues } };
    return this.choices.value;
  }

  /** The queue-depth gauges (core/api/metrics.ts): one statement, its answer kept for 5 s. */
  async metrics(): Promise<string> {
    const store = await this.store();
    this.gauges ??= queueMetrics(store, { clock: { now: this.now } });
    return this.gauges.collect();
  }

  async retry(target: ActionTarget): Promise<ActionResult> {
    return actOn(await this.store(), 'retry', target, this.now);
  }

  async cancel(target: ActionTarget): Promise<ActionResult> {
    return actOn(await this.store(), 'cancel', target, this.now);
  }

  async delete(target: ActionTarget): Promise<ActionResult> {
    return actOn(await this.store(), 'delete', target, this.now);
  }

  async runNow(target: ActionTarget): Promise<ActionResult> {
    return actOn(await this.store(), 'runNow', target, this.now);
  }
}

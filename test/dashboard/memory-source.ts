/**
 * A DashboardSource over plain arrays, for unit and browser tests of the web layer only (the
 * storage layer's SQL source is tested on the real databases). It keeps the contract's promises
 * that the web layer relies on: real keyset cursors, the action semantics and their outcomes,
 * ValidationError for a cursor it did not make.
 */
import { ValidationError } from '../../core/errors.js';
import type {
  ActionItem,
  ActionResult,
  ActionTarget,
  CronSchedule,
  DashboardSource,
  FailureGroup,
  FailureGroupQuery,
  FilterChoices,
  Overview,
  SourceInfo,
  TaskAction,
  TaskDetail,
  TaskError,
  TaskFilter,
  TaskPage,
  TaskPageRequest,
  TaskSortKey,
  TaskSummary,
  WorkerList,
} from '../../core/dashboard/source.js';
import type { Status } from '../../core/types.js';

/** A stored task; times are epoch ms. */
export interface MemTask {
  id: string;
  name: string;
  status: Status;
  queue: string | null;
  priority: number;
  args: string;
  verboseName: string | null;
  attempts: number;
  enqueuedAt: number;
  runAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  workerId: string | null;
  errors: TaskError[];
  result: string | null;
  cancelRequested: boolean;
  predecessorId: string | null;
  successorId: string | null;
}

export function memTask(id: number, fields: Partial<MemTask> & { at?: number } = {}): MemTask {
  const at = fields.at ?? Date.UTC(2030, 0, 2, 3, 0, 0);
  const { at: _at, ...rest } = fields;
  return {
    id: String(id),
    name: 'sendEmail',
    status: 'READY',
    queue: null,
    priority: 0,
    args: `["user${id}@example.com"]`,
    verboseName: null,
    attempts: 0,
    enqueuedAt: at,
    runAt: at,
    startedAt: null,
    finishedAt: null,
    workerId: null,
    errors: [],
    result: null,
    cancelRequested: false,
    predecessorId: null,
    successorId: null,
    ...rest,
  };
}

export function failure(cls: string, message: string, at: number, attempt = 1): TaskError {
  return { class: cls, message, stack: `${cls}: ${message}\n    at task (/app/tasks.ts:1:1)`, attempt, at: new Date(at), workerId: 'w1' };
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

interface Cursor {
  k: TaskSortKey;
  d: 'asc' | 'desc';
  v: number | null;
  id: number;
  w: 'after' | 'before';
}

export class MemorySource implements DashboardSource {
  tasks: MemTask[] = [];
  workerList: WorkerList = { alive: [], gone: [] };
  scheduleList: CronSchedule[] = [];
  /** Every call, by method name, for assertions. */
  calls: string[] = [];
  /** When set, the next read rejects with it (then it is cleared). */
  failNext: Error | null = null;
  private nextId = 1000;

  constructor(readonly now: () => number = Date.now) {}

  private call(name: string): void {
    this.calls.push(name);
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = null;
      throw err;
    }
  }

  describe(): SourceInfo {
    return { database: 'memory:test (password ***)', version: '0.1.0' };
  }

  private matches(t: MemTask, f: TaskFilter): boolean {
    if (f.statuses?.length && !f.statuses.includes(t.status)) return false;
    if (f.queues?.length && !f.queues.includes(t.queue)) return false;
    if (f.names?.length && !f.names.includes(t.name)) return false;
    if (f.argsContain !== undefined && !t.args.includes(f.argsContain)) return false;
    if (f.errorClass !== undefined && t.errors[t.errors.length - 1]?.class !== f.errorClass) return false;
    if (f.range) {
      const v = t[f.range.field];
      if (v === null) return false;
      if (f.range.from && v < f.range.from.getTime()) return false;
      if (f.range.to && v >= f.range.to.getTime()) return false;
    }
    return true;
  }

  private summary(t: MemTask): TaskSummary {
    const last = t.errors[t.errors.length - 1];
    return {
      id: t.id,
      name: t.name,
      verboseName: t.verboseName,
      status: t.status,
      queue: t.queue,
      priority: t.priority,
      attempts: t.attempts,
      argsPreview: t.args.slice(0, 200),
      argsTruncated: t.args.length > 200,
      enqueuedAt: new Date(t.enqueuedAt),
      runAt: new Date(t.runAt),
      startedAt: date(t.startedAt),
      finishedAt: date(t.finishedAt),
      workerId: t.workerId,
      lastError: last ? { class: last.class, message: last.message } : null,
      cancelRequested: t.cancelRequested,
    };
  }

  async overview(): Promise<Overview> {
    this.call('overview');
    const now = this.now();
    const byQueue = new Map<string | null, Record<Status, number>>();
    const totals = { READY: 0, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 };
    for (const t of this.tasks) {
      const q = byQueue.get(t.queue) ?? { READY: 0, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 };
      q[t.status]++;
      totals[t.status]++;
      byQueue.set(t.queue, q);
    }
    const due = this.tasks.filter((t) => t.status === 'READY' && t.runAt <= now).sort((a, b) => a.runAt - b.runAt)[0];
    const minuteNow = Math.floor(now / 60_000) * 60_000;
    const throughput = Array.from({ length: 60 }, (_, i) => {
      const start = minuteNow - (59 - i) * 60_000;
      const done = this.tasks.filter((t) => t.finishedAt !== null && t.finishedAt >= start && t.finishedAt < start + 60_000);
      return { minute: new Date(start), succeeded: done.filter((t) => t.status === 'SUCCESSFUL').length, failed: done.filter((t) => t.status === 'FAILED').length };
    });
    return {
      at: new Date(now),
      queues: [...byQueue].map(([queue, c]) => ({ queue, ...c })),
      totals,
      oldestDue: due ? { id: due.id, name: due.name, queue: due.queue, dueSince: new Date(due.runAt), waitSeconds: (now - due.runAt) / 1000 } : null,
      failuresLastHour: this.tasks.filter((t) => t.status === 'FAILED' && t.finishedAt !== null && t.finishedAt >= now - 3_600_000).length,
      throughput,
      workersAlive: this.workerList.alive.length,
    };
  }

  private order(key: TaskSortKey, dir: 'asc' | 'desc') {
    const sign = dir === 'asc' ? 1 : -1;
    const value = (t: MemTask): number | null => (key === 'priority' ? t.priority : t[key]);
    const cmp = (av: number | null, aid: number, bv: number | null, bid: number): number => {
      if (av === null && bv !== null) return 1;
      if (av !== null && bv === null) return -1;
      if (av !== null && bv !== null && av !== bv) return sign * (av - bv);
      return sign * (aid - bid);
    };
    return { value, cmp };
  }

  private readCursor(text: string, key: TaskSortKey, dir: 'asc' | 'desc'): Cursor {
    let c: Cursor;
    try {
      c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Cursor;
    } catch {
      throw new ValidationError('bad cursor: not one this source made');
    }
    if (typeof c !== 'object' || c === null || typeof c.id !== 'number' || (c.w !== 'after' && c.w !== 'before')) {
      throw new ValidationError('bad cursor: not one this source made');
    }
    if (c.k !== key || c.d !== dir) throw new ValidationError('bad cursor: it was made for another sort order (open the first page again)');
    return c;
  }

  async listTasks(r: TaskPageRequest): Promise<TaskPage> {
    this.call('listTasks');
    const { value, cmp } = this.order(r.sort.key, r.sort.direction);
    const all = this.tasks
      .filter((t) => this.matches(t, r.filter))
      .sort((a, b) => cmp(value(a), Number(a.id), value(b), Number(b.id)));
    let start = 0;
    let end = Math.min(all.length, r.limit);
    if (r.cursor) {
      const c = this.readCursor(r.cursor, r.sort.key, r.sort.direction);
      if (c.w === 'after') {
        start = all.findIndex((t) => cmp(value(t), Number(t.id), c.v, c.id) > 0);
        if (start < 0) start = all.length;
        end = Math.min(all.length, start + r.limit);
      } else {
        let before = all.findIndex((t) => cmp(value(t), Number(t.id), c.v, c.id) >= 0);
        if (before < 0) before = all.length;
        end = before;
        start = Math.max(0, end - r.limit);
      }
    }
    const rows = all.slice(start, end);
    const make = (t: MemTask, w: 'after' | 'before'): string =>
      Buffer.from(JSON.stringify({ k: r.sort.key, d: r.sort.direction, v: value(t), id: Number(t.id), w })).toString('base64url');
    return {
      rows: rows.map((t) => this.summary(t)),
      next: rows.length && end < all.length ? make(rows[rows.length - 1], 'after') : null,
      prev: rows.length && start > 0 ? make(rows[0], 'before') : null,
    };
  }

  async countTasks(filter: TaskFilter): Promise<number> {
    this.call('countTasks');
    return this.tasks.filter((t) => this.matches(t, filter)).length;
  }

  async getTask(id: string): Promise<TaskDetail | null> {
    this.call('getTask');
    const t = this.tasks.find((x) => x.id === id);
    if (!t) return null;
    return {
      id: t.id,
      name: t.name,
      verboseName: t.verboseName,
      status: t.status,
      queue: t.queue,
      priority: t.priority,
      args: t.args,
      hash: `hash-${t.id}`,
      creator: null,
      attempts: t.attempts,
      maxAttempts: null,
      enqueuedAt: new Date(t.enqueuedAt),
      scheduledAt: new Date(t.enqueuedAt),
      runAt: new Date(t.runAt),
      startedAt: date(t.startedAt),
      finishedAt: date(t.finishedAt),
      failedAt: t.status === 'FAILED' ? date(t.finishedAt) : null,
      expiresAt: null,
      workerId: t.workerId,
      lease: t.status === 'RUNNING' && t.workerId ? { workerId: t.workerId, lockedAt: date(t.startedAt), until: new Date(this.now() + 60_000) } : null,
      cancelRequested: t.cancelRequested,
      repeat: null,
      recurringKey: null,
      predecessorId: t.predecessorId,
      successorId: t.successorId,
      result: t.result,
      errors: t.errors,
      attemptHistory: t.errors.map((e) => ({ attempt: e.attempt, workerId: e.workerId, startedAt: e.at, endedAt: e.at, outcome: 'failed' as const })),
    };
  }

  async failureGroups(q: FailureGroupQuery): Promise<FailureGroup[]> {
    this.call('failureGroups');
    const groups = new Map<string, FailureGroup>();
    for (const t of this.tasks) {
      if (t.status !== 'FAILED' || t.finishedAt === null) continue;
      if (q.since && t.finishedAt < q.since.getTime()) continue;
      const last = t.errors[t.errors.length - 1];
      const cls = last?.class ?? '';
      const key = `${t.name}\n${cls}`;
      const g = groups.get(key);
      if (!g) {
        groups.set(key, { name: t.name, errorClass: cls, count: 1, lastFailedAt: new Date(t.finishedAt), sampleMessage: last?.message ?? '', sampleTaskId: t.id });
      } else {
        g.count++;
        if (t.finishedAt > g.lastFailedAt.getTime()) Object.assign(g, { lastFailedAt: new Date(t.finishedAt), sampleMessage: last?.message ?? '', sampleTaskId: t.id });
      }
    }
    return [...groups.values()].sort((a, b) => b.count - a.count).slice(0, q.limit);
  }

  async schedules(): Promise<CronSchedule[]> {
    this.call('schedules');
    return this.scheduleList;
  }

  async workers(): Promise<WorkerList> {
    this.call('workers');
    return this.workerList;
  }

  async filterChoices(): Promise<FilterChoices> {
    this.call('filterChoices');
    return { taskNames: [...new Set(this.tasks.map((t) => t.name))].sort(), queues: [...new Set(this.tasks.map((t) => t.queue))] };
  }

  private act(action: TaskAction, target: ActionTarget, one: (t: MemTask) => ActionItem): ActionResult {
    this.call(action);
    const ids = 'ids' in target ? target.ids : this.tasks.filter((t) => this.matches(t, target.filter)).map((t) => t.id);
    const items = ids.map((id) => {
      const t = this.tasks.find((x) => x.id === id);
      return t ? one(t) : { id, name: null, outcome: 'notFound' as const, before: null, after: null, newId: null };
    });
    const changed = items.filter((i) => ['retried', 'cancelled', 'cancelRequested', 'deleted', 'movedToNow'].includes(i.outcome)).length;
    const unchanged = items.filter((i) => i.outcome === 'unchanged').length;
    return { action, changed, unchanged, refused: items.length - changed - unchanged, items, itemsOmitted: 0 };
  }

  async retry(target: ActionTarget): Promise<ActionResult> {
    return this.act('retry', target, (t) => {
      if (t.status !== 'FAILED') return { id: t.id, name: t.name, outcome: 'wrongStatus', before: t.status, after: t.status, newId: null };
      const copy = memTask(this.nextId++, { name: t.name, queue: t.queue, args: t.args, priority: t.priority, at: this.now() });
      this.tasks.push(copy);
      return { id: t.id, name: t.name, outcome: 'retried', before: 'FAILED', after: 'FAILED', newId: copy.id };
    });
  }

  async cancel(target: ActionTarget): Promise<ActionResult> {
    return this.act('cancel', target, (t) => {
      const before = t.status;
      if (t.status === 'READY') {
        Object.assign(t, { status: 'FAILED', finishedAt: this.now(), errors: [...t.errors, failure('CancelledError', 'cancelled', this.now())] });
        return { id: t.id, name: t.name, outcome: 'cancelled', before, after: 'FAILED', newId: null };
      }
      if (t.status === 'RUNNING') {
        const outcome = t.cancelRequested ? 'unchanged' : 'cancelRequested';
        t.cancelRequested = true;
        return { id: t.id, name: t.name, outcome, before, after: 'RUNNING', newId: null };
      }
      return { id: t.id, name: t.name, outcome: 'wrongStatus', before, after: before, newId: null };
    });
  }

  async delete(target: ActionTarget): Promise<ActionResult> {
    return this.act('delete', target, (t) => {
      if (t.status === 'RUNNING') return { id: t.id, name: t.name, outcome: 'wrongStatus', before: 'RUNNING', after: 'RUNNING', newId: null };
      this.tasks = this.tasks.filter((x) => x !== t);
      return { id: t.id, name: t.name, outcome: 'deleted', before: t.status, after: null, newId: null };
    });
  }

  async runNow(target: ActionTarget): Promise<ActionResult> {
    return this.act('runNow', target, (t) => {
      if (t.status !== 'READY') return { id: t.id, name: t.name, outcome: 'wrongStatus', before: t.status, after: t.status, newId: null };
      if (t.runAt <= this.now()) return { id: t.id, name: t.name, outcome: 'unchanged', before: 'READY', after: 'READY', newId: null };
      t.runAt = this.now();
      return { id: t.id, name: t.name, outcome: 'movedToNow', before: 'READY', after: 'READY', newId: null };
    });
  }
}

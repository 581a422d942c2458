/**
 * What a worker says once an attempt's end is written: the summary counts, one log line, and the
 * events, in the reference's order (started → succeeded → finished; started → error →
 * rescheduled → finished; started → error → failed → finished).
 */
import { events, type TaskEventInfo } from '../base/events.js';
import type { Logger } from '../base/log.js';
import type { SettleReport } from './settler.js';
import type { TaskRow } from '../types.js';

export type StopReason = 'stopped' | 'duration' | 'batch' | 'max-tasks' | 'fatal';

export interface WorkerSummary {
  workerId: string;
  /** Attempts that ran to an end (any outcome). */
  ran: number;
  succeeded: number;
  rescheduled: number;
  /** Attempts that ended in ctx.snooze(): back to READY, attempt not counted. */
  snoozed: number;
  failed: number;
  released: number;
  lost: number;
  reason: StopReason;
}

export function taskInfo(t: TaskRow): TaskEventInfo {
  return { id: t.id, name: t.name, queue: t.queue, priority: t.priority, attempt: t.attempts, runAt: t.runAt };
}

function errText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export interface ReportContext {
  summary: WorkerSummary;
  log: Logger;
  /** Whether info lines are written (building their fields costs on the hot path). */
  logInfo: boolean;
  workerId: string;
}

export function reportSettled(r: SettleReport, c: ReportContext): void {
  const t = r.task;
  const { summary, log, workerId } = c;
  summary.ran++;
  if (r.outcome === 'succeeded') {
    // The hot path: nothing is built for logs or events nobody reads.
    summary.succeeded++;
    if (c.logInfo) log.info('task succeeded', { id: t.id, name: t.name, queue: t.queue, attempt: t.attempts, duration_ms: r.durationMs ?? undefined, outcome: 'succeeded' });
    if (events.listenerCount('task:succeeded') > 0) {
      events.emit('task:succeeded', { ...taskInfo(t), workerId, returnValue: r.returnValue ? JSON.parse(r.returnValue) : undefined, durationMs: r.durationMs ?? 0 });
    }
    if (events.listenerCount('task:finished') > 0) events.emit('task:finished', { ...taskInfo(t), workerId, outcome: 'succeeded' });
    return;
  }
  const info = taskInfo(t);
  const base = { id: t.id, name: t.name, queue: t.queue, attempt: t.attempts, duration_ms: r.durationMs ?? undefined };
  const err = r.decision.type === 'retry' || r.decision.type === 'fail' ? r.decision.error : undefined;
  switch (r.outcome) {
    case 'rescheduled':
      summary.rescheduled++;
      log.warn('task failed; retry scheduled', { ...base, outcome: 'rescheduled', retry_at: new Date((r.decision as { runAt: number }).runAt).toISOString(), error: errText(err) });
      events.emit('task:error', { ...info, workerId, error: err });
      events.emit('task:rescheduled', { ...info, workerId, error: err });
      break;
    case 'failed':
      summary.failed++;
      log.error('task failed for good', { ...base, outcome: 'failed', error: errText(err) });
      events.emit('task:error', { ...info, workerId, error: err });
      events.emit('task:failed', { ...info, workerId, error: err });
      break;
    case 'snoozed':
      summary.snoozed++;
      if (c.logInfo) log.info('task snoozed', { ...base, outcome: 'snoozed', run_at: new Date((r.decision as { runAt: number }).runAt).toISOString() });
      events.emit('task:snoozed', { ...info, workerId, runAt: (r.decision as { runAt: number }).runAt });
      break;
    case 'released':
      summary.released++;
      log.info('task released (attempt given back)', { ...base, outcome: 'released' });
      break;
    case 'lost':
      summary.lost++;
      return;
  }
  events.emit('task:finished', { ...info, workerId, outcome: r.outcome as 'succeeded' | 'rescheduled' | 'snoozed' | 'failed' | 'released' });
}

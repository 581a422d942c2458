/**
 * One attempt of a claimed task, from its start to the decision handed to the settler: the
 * expiry check, the task's function run by the executor (in its span when OpenTelemetry is set
 * up), the decision of policy/transitions.ts, and the moving average of attempt durations that
 * the auto prefetch reads. The worker owns the slot the attempt runs in.
 */
import type { Clock } from '../base/clock.js';
import { events } from '../base/events.js';
import type { Logger } from '../base/log.js';
import { loadTracing, startAttemptSpan, tracingSetUp, type OtelApi, type OtelSpan } from '../base/tracing.js';
import type { Settings } from '../config/settings.js';
import type { AttemptControl } from '../definition/attempt-control.js';
import { execute } from '../definition/executor.js';
import { getRegistered, registeredNames } from '../definition/registry.js';
import { ExpiredError } from '../errors.js';
import { decide, type Decision, type Execution } from '../policy/transitions.js';
import type { Store } from '../store/store.js';
import type { TaskRow } from '../types.js';
import { endAttemptSpan } from './attempt-span.js';
import type { DatabaseHealth } from './db-health.js';
import { flushTaskOutput } from './log-capture.js';
import { taskRecurrence } from './maintenance.js';
import type { WorkerMetrics } from './metrics.js';
import type { WorkerOptions } from './options.js';
import { taskInfo, type WorkerSummary } from './report.js';
import type { Settler } from './settler.js';

/** How long a claimed task that this worker cannot run is left before it is due again. */
const UNRUNNABLE_DELAY_MS = 60_000;

/** The most attempts a task gets: its own, its definition's, the worker's, the settings'. */
export function maxAttemptsFor(t: TaskRow, options: WorkerOptions, settings: Settings): number {
  const def = getRegistered(t.name);
  return t.maxAttempts ?? def?.options.maxAttempts ?? options.maxAttempts ?? settings.maxAttempts;
}

export interface AttemptContext {
  workerId: string;
  clock: Clock;
  log: Logger;
  settings: Settings;
  options: WorkerOptions;
  store: Store;
  health: DatabaseHealth;
  settler: Settler;
  /** The worker's counts; an attempt adds the ones no settle reports (lost, released). */
  summary: WorkerSummary;
  metrics: WorkerMetrics | null;
  /** The OpenTelemetry API when the application had it set up at the worker's start. */
  otel: OtelApi | null;
}

export class AttemptRunner {
  /** Moving average of attempt durations (ms), for the auto prefetch; -1 before the first. */
  avgTaskMs = -1;
  private otel: OtelApi | null;
  private tracingRequested = false;
  /** Whether debug lines are written at all (building their fields costs on the hot path). */
  private readonly logDebug: boolean;
  /** Names of claimed tasks this worker could not run, warned about once each. */
  private readonly unrunnableWarned = new Set<string>();

  constructor(private readonly c: AttemptContext) {
    this.otel = c.otel;
    this.logDebug = c.log.enabled?.('debug') ?? true;
  }

  async run(task: TaskRow, control: AttemptControl): Promise<void> {
    const c = this.c;
    const def = getRegistered(task.name);
    const nowMs = c.clock.now();
    const started = performance.now();
    let execution: Execution;
    let span: OtelSpan | null = null;
    if (task.expiresAt !== null && task.expiresAt <= nowMs) {
      execution = { kind: 'expired', error: new ExpiredError(`Task ${task.name} #${task.id} was not started before it expired at ${new Date(task.expiresAt).toISOString()}`) };
    } else if (!def) {
      await this.setAside(task);
      return;
    } else {
      if (events.listenerCount('task:started') > 0) events.emit('task:started', { ...taskInfo(task), workerId: c.workerId });
      // One info line per task, at its end (report.ts); its start is a debug line.
      if (this.logDebug) c.log.debug('task started', { id: task.id, name: task.name, queue: task.queue, attempt: task.attempts });
      const maxRunTime = task.maxRunTime ?? def.options.maxRunTime ?? c.options.maxRunTime ?? c.settings.maxRunTime;
      const run = () =>
        execute({
          task,
          def,
          maxRunTimeMs: Math.round(maxRunTime * 1000),
          control,
          log: c.log,
          maxResultBytes: c.settings.maxResultBytes,
        });
      if (!this.otel) this.tracedAttempts();
      if (this.otel) {
        // The task's function runs in its attempt's span: spans it makes are children of it.
        const traced = startAttemptSpan(this.otel, task, c.workerId);
        span = traced.span;
        execution = await this.otel.context.with(traced.context, run);
      } else {
        execution = await run();
      }
    }
    const decision: Decision = decide(
      { attempts: task.attempts, snoozes: task.snoozes, scheduledAt: task.scheduledAt, recurrence: taskRecurrence(task), repeatOnFailure: task.repeatOnFailure },
      execution,
      { nowMs: c.clock.now(), maxAttempts: maxAttemptsFor(task, c.options, c.settings), maxSnoozes: c.settings.maxSnoozes },
    );
    if (span) endAttemptSpan(this.otel!, span, execution, decision);
    const elapsed = performance.now() - started;
    this.avgTaskMs = this.avgTaskMs < 0 ? elapsed : this.avgTaskMs * 0.9 + elapsed * 0.1;
    const durationMs = Math.round(elapsed * 10) / 10;
    flushTaskOutput(task.id);
    if (decision.type === 'none') {
      c.log.warn('lease lost while the task ran; its result is discarded (another worker owns it now)', { id: task.id, name: task.name });
      c.summary.lost++;
      c.summary.ran++;
      c.metrics?.attempt(task.name, task.queue, 'lost', durationMs);
      return;
    }
    // The slot frees now; the result is written by the settler (its lease stays renewed until then).
    c.settler.settle(task, decision, execution.kind === 'success' ? execution.returnJson : null, durationMs);
  }

  /**
   * An application that sets OpenTelemetry up after the worker started: the API is imported then
   * (one property read per attempt until it is), and the attempts that start once it is loaded
   * get their spans.
   */
  private tracedAttempts(): void {
    if (this.tracingRequested || !tracingSetUp()) return;
    this.tracingRequested = true;
    void loadTracing().then((api) => (this.otel = api));
  }

  /**
   * A claimed task that no task registered in this process is named exactly like: the database
   * matched its name loosely (a MySQL table not migrated to exact collations), or the task files
   * changed under the worker. Given back with its attempt, but not due again for
   * UNRUNNABLE_DELAY_MS: released ready at once, it came straight back to this worker about 130
   * times a second, and `--batch` never ended. One warning per name.
   */
  private async setAside(task: TaskRow): Promise<void> {
    const c = this.c;
    if (!this.unrunnableWarned.has(task.name)) {
      this.unrunnableWarned.add(task.name);
      c.log.warn('claimed a task this worker cannot run: no task is registered under its exact name; it is given back and not due again for 60 s', {
        id: task.id,
        name: task.name,
        registered: registeredNames(),
      });
    }
    try {
      const n = await c.health.guard(() => c.store.release([task], { runAt: c.clock.now() + UNRUNNABLE_DELAY_MS }), 0);
      c.summary.released += n;
    } catch (err) {
      // Its lease expires, and lease recovery makes it ready again.
      c.log.error('could not give back a task this worker cannot run', { id: task.id, name: task.name, error: err instanceof Error ? err.message : String(err) });
    }
  }
}

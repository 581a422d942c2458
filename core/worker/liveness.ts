/**
 * The worker's liveness beat (policy/liveness.ts, docs/reliability.md): a thread of its own
 * (liveness-thread.ts) writes the registry row's `alive_at` every couple of seconds, on a
 * connection of its own, whatever the worker's event loop is doing. Here, on that loop:
 *
 *  - the fence: when none of its beats has landed for two thirds of `livenessTimeout`, the worker
 *    may be cut off from the database, and the other workers may recover its running tasks once
 *    the whole timeout has passed. It aborts the signal of each running attempt (with a
 *    WorkerStoppedError) without abandoning it: an attempt whose function stops is given back, as
 *    a stopping worker's are, and one whose function returns anyway keeps its result; both are
 *    written once the database answers, fenced by the claim token (a task another worker has
 *    claimed meanwhile stays that worker's). It starts nothing until its beats land again;
 *  - the resume: once beats land again after such a silence, whether the loop saw it (the fence)
 *    or not (the process was stopped, or a task blocked the loop meanwhile), the leases are
 *    checked again before anything starts: a heartbeat learns which tasks another worker took;
 *  - the judging: how long this worker's own beats have landed with no long gap, which
 *    Maintenance needs before it takes another worker's silence for a death.
 *
 * No thread where none can help or none can run: `livenessTimeout` 0, SQLite (one machine, where
 * a dead process is found by its pid: DEADWORKER-01), the application's own knex instance or a
 * config holding functions (a thread cannot be handed either), a simulated clock (a test's
 * ManualClock; a thread keeps real time). The row's beat then stays NULL and this worker's tasks
 * wait for their lease, as before.
 */
import { Worker as Thread } from 'node:worker_threads';
import type { Clock } from '../base/clock.js';
import { threadStarting } from '../base/threads.js';
import type { Logger } from '../base/log.js';
import type { DatabaseSpec } from '../config/database-spec.js';
import { WorkerStoppedError } from '../errors.js';
import { livenessBeatMs, livenessFenceMs, livenessGapMs } from '../policy/liveness.js';
import type { Timeouts } from '../store/dialects/timeouts.js';
import { LivenessState, realNowMs } from './liveness-state.js';
import type { LivenessThreadData, LivenessThreadMessage } from './liveness-thread.js';
import type { Service } from './service.js';

/** How often the loop looks at the shared state: the fence comes at most this late. */
const CHECK_MS = 250;
/** A thread that ended (or could not start) is started again after this, doubling up to the cap. */
const RESTART_MS = 1000;
const RESTART_CAP_MS = 30_000;
/**
 * The thread starts this long after the worker. Starting it costs about 100 ms of CPU (a fresh
 * isolate loading knex and the driver, then connecting), which a short run would pay on the same
 * cores as its own first claims: 10,000 no-op tasks on PostgreSQL ran 16 % slower with the
 * thread started at once. A worker that dies before its first beat lands is recovered when its
 * lease runs out, as one without a beat is.
 */
const SPAWN_DELAY_MS = 1000;

export interface LivenessOptions {
  spec: DatabaseSpec;
  tablePrefix: string;
  workerId: string;
  clock: Clock;
  log: Logger;
  /** `livenessTimeout` in ms; 0: no beat. */
  timeoutMs: number;
  /** The bounds of the worker's own connections; the thread's are shorter still (a beat is tiny). */
  timeouts: Timeouts;
  /** The fence: ask the running attempts to stop with this reason, and hold the leases as possibly lost. */
  onFence(reason: WorkerStoppedError): void;
  /** Beats land again after a silence as long as the fence: check the leases before starting anything. */
  onResume(): void;
}

/** Why this worker can have no liveness beat, or null when it can. */
export function livenessUnavailable(spec: DatabaseSpec, timeoutMs: number, clock: Clock): string | null {
  if (timeoutMs <= 0) return 'livenessTimeout is 0';
  if (clock.simulated) return 'the worker runs on a simulated clock';
  if (spec.dialect === 'sqlite') return 'SQLite runs on one machine, where a dead worker is found by its process id';
  if (spec.knex) return "the database is the application's own knex instance, which a thread cannot share";
  try {
    structuredClone(spec.config);
  } catch {
    return 'the database config holds functions, which a thread cannot be given';
  }
  return null;
}

/**
 * The thread's module: the compiled file. When this file is the TypeScript source (this
 * repository's tests), a module that registers tsx in the thread first (a thread does not
 * inherit the loader hooks of the process) and then imports the source.
 */
function threadModule(): URL {
  if (!import.meta.url.endsWith('.ts')) {
    // Found from dist/, not from this module: the build bundles this code into a shared chunk
    // (dist/chunks/), and the thread's own entry stays at core/worker/liveness-thread.js.
    const dist = import.meta.url.slice(0, import.meta.url.lastIndexOf('/dist/') + '/dist/'.length);
    return new URL('core/worker/liveness-thread.js', dist);
  }
  const source = new URL('./liveness-thread.ts', import.meta.url).href;
  const code = `const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}); register(); await import(${JSON.stringify(source)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

export class Liveness implements Service {
  private readonly state = new LivenessState();
  private readonly beatMs: number;
  private readonly fenceMs: number;
  private readonly gapMs: number;
  private thread: Thread | null = null;
  private exited: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private spawnTimer: NodeJS.Timeout | null = null;
  private restartMs = RESTART_MS;
  private stopping = false;
  private fencedNow = false;
  private seenRun = 0;
  private seenLanded = 0;
  private lastFailure: string | null = null;
  /** Null when the beat runs; otherwise why not. */
  readonly unavailable: string | null;

  constructor(private readonly o: LivenessOptions) {
    this.unavailable = livenessUnavailable(o.spec, o.timeoutMs, o.clock);
    this.beatMs = livenessBeatMs(o.timeoutMs);
    this.fenceMs = livenessFenceMs(o.timeoutMs);
    this.gapMs = livenessGapMs(o.timeoutMs);
  }

  /**
   * Starts the thread SPAWN_DELAY_MS from now, without waiting for it: until its first beat
   * lands, the row has none.
   */
  start(): void {
    if (this.unavailable) {
      // Said (with -v) only where a beat could be expected: a server database, a timeout, a real clock.
      if (this.o.spec.dialect !== 'sqlite' && this.o.timeoutMs > 0 && !this.o.clock.simulated) {
        this.o.log.debug('no liveness beat: if this worker dies, its running tasks wait for their lease', { reason: this.unavailable });
      }
      return;
    }
    this.check();
    this.spawnTimer = setTimeout(() => {
      this.spawnTimer = null;
      if (!this.stopping) this.spawn();
    }, SPAWN_DELAY_MS);
    this.spawnTimer.unref();
    this.timer = setInterval(() => this.check(), CHECK_MS);
    this.timer.unref();
  }

  /** True while the fence holds: this worker starts nothing. */
  get fenced(): boolean {
    return this.fencedNow;
  }

  /**
   * How long (ms) this worker's own beats have landed with no gap longer than a third of the
   * timeout, up to now; 0 without a beat. Another worker's silence is judged only when this
   * covers that worker's timeout (policy/liveness.ts mayJudgeSilence).
   */
  continuousMs(): number {
    if (this.unavailable) return 0;
    const last = this.state.lastLanded;
    const now = realNowMs();
    if (last === 0 || now - last > this.gapMs) return 0;
    return now - this.state.judgingSince;
  }

  private spawn(): void {
    const data: LivenessThreadData = {
      spec: this.o.spec,
      tablePrefix: this.o.tablePrefix,
      workerId: this.o.workerId,
      timeoutMs: this.o.timeoutMs,
      // A beat that takes longer than a third of the timeout breaks the run anyway.
      timeouts: { connectMs: Math.min(this.o.timeouts.connectMs, this.gapMs), statementMs: Math.min(this.o.timeouts.statementMs, this.gapMs) },
      state: this.state.buffer,
    };
    let thread: Thread;
    try {
      // Its heap holds knex and the driver, about 10 MiB. V8's default young generation for a
      // thread took it to 18-28 MiB (measured with knex and the driver loaded and connected); a
      // beat every two seconds allocates little, so 1 MiB serves, and the old generation keeps
      // three times what the thread needs.
      thread = new Thread(threadModule(), {
        workerData: data,
        resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 1 },
        stdout: false,
        stderr: false,
      });
    } catch (err) {
      this.ended(err);
      return;
    }
    thread.unref();
    threadStarting(thread);
    this.thread = thread;
    let failure: unknown = null;
    thread.on('message', (m: LivenessThreadMessage) => (this.lastFailure = m.failed));
    thread.on('error', (err) => (failure = err));
    this.exited = new Promise((resolve) =>
      thread.once('exit', () => {
        if (this.thread === thread) this.thread = null;
        if (!this.stopping) this.ended(failure ?? new Error('the liveness thread ended'));
        resolve();
      }),
    );
  }

  /** The thread ended or could not start: said once per restart, and started again later. */
  private ended(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.o.log.warn('the liveness beat stopped; it is started again', { error: message, retry_in_ms: this.restartMs });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.stopping) this.spawn();
    }, this.restartMs);
    this.restartTimer.unref();
    this.restartMs = Math.min(this.restartMs * 2, RESTART_CAP_MS);
  }

  private check(): void {
    this.state.offsetMs = this.o.clock.now() - Date.now();
    const last = this.state.lastLanded;
    if (last === 0) return;
    // A beat landed since the last look: a thread that was started again works.
    if (last !== this.seenLanded) this.restartMs = RESTART_MS;
    this.seenLanded = last;
    const silentMs = realNowMs() - last;
    const run = this.state.fenceRunSince;
    if (!this.fencedNow && silentMs > this.fenceMs) {
      this.fencedNow = true;
      const seconds = Math.round(silentMs / 100) / 10;
      this.o.log.warn(
        "this worker's liveness beats have not reached the database for a while: other workers may recover its running tasks, so it asks them to stop and starts none until its beats land again",
        { silent_s: seconds, liveness_timeout_s: this.o.timeoutMs / 1000, error: this.lastFailure },
      );
      const reason = new WorkerStoppedError(
        `this worker's liveness beats have not reached the database for ${seconds} s (livenessTimeout ${this.o.timeoutMs / 1000} s): it may be cut off, and other workers may recover this task; stop, and the attempt is given back`,
      );
      this.o.onFence(Object.assign(reason, { release: true }));
    } else if (this.fencedNow && silentMs <= this.fenceMs) {
      this.fencedNow = false;
      this.o.log.info("this worker's liveness beats reach the database again; it checks its leases before it starts anything");
      this.o.onResume();
    } else if (this.seenRun !== 0 && run !== this.seenRun && !this.fencedNow) {
      // A silence as long as the fence that this loop did not see (it was blocked, or the process stopped).
      this.o.log.warn("this worker's liveness beats did not land for a while (its process was stopped, or its event loop blocked); it checks its leases");
      this.o.onResume();
    }
    this.seenRun = run;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.spawnTimer) clearTimeout(this.spawnTimer);
    this.timer = this.restartTimer = this.spawnTimer = null;
    const thread = this.thread;
    if (!thread) return;
    // Still starting (no beat has landed): nothing to close cleanly, and a short run (a batch with
    // nothing due) should not wait for a thread that is still loading.
    if (this.state.lastLanded === 0) {
      await thread.terminate();
      this.thread = null;
      return;
    }
    thread.postMessage('stop');
    // It closes its connection and ends; one still waiting for the database is ended here.
    const late = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), Math.min(3 * this.beatMs, 2000)).unref());
    if ((await Promise.race([this.exited, late])) === 'late') await thread.terminate();
    this.thread = null;
  }
}

/**
 * Worker options: what `createWorker()` and `bgtasks process-tasks` accept, validated in one pure
 * function so the CLI and the API reject the same values with the same words.
 */
import { closestName } from '../base/suggest.js';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../base/clock.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../base/log.js';
import type { Registry } from 'prom-client';
import { parseWithSpec } from '../config/settings-spec.js';

export interface WorkerOptions {
  /** Only these queues (null/undefined: every queue, and tasks without one). */
  queues?: string[] | null;
  /** Every queue except these (tasks without a queue included). Only without `queues`. */
  excludeQueues?: string[] | null;
  /** Tasks run at once. Default: the `concurrency` setting (1). */
  concurrency?: number;
  /** Tasks claimed ahead of free slots, or `auto`. Default: the `prefetch` setting (`auto`). */
  prefetch?: number | 'auto';
  /** Seconds between polls when idle. Default: the `sleep` setting (5). */
  sleep?: number;
  /** Stop claiming after this many seconds (0: run until stopped). */
  duration?: number;
  /** Seconds running tasks get to finish after a stop or the duration. Default 30. */
  grace?: number;
  /**
   * With a duration: claim only tasks whose maxRunTime fits the time left before the duration
   * plus grace runs out, so a cron-launched worker never starts a task it would have to abort.
   * Default true (docs/flow-control.md#run-budget).
   */
  runBudget?: boolean;
  /** Run what is due, then stop when nothing due is left. */
  batch?: boolean;
  /** Stop after this many tasks ran (any outcome). */
  maxTasks?: number | null;
  /** Non-empty, at most 64 characters. Default `hostname:pid:random`. */
  workerId?: string;
  /** Task names to claim. Default: every registered task. */
  names?: string[];
  /** The named connection (see the `connections` setting). */
  connection?: string | null;
  /**
   * The clock of every comparison (default: the process-wide one). The worker keeps it on the
   * database's time (worker/clock-sync.ts) unless it is `simulated`, as a ManualClock is.
   */
  clock?: Clock;
  logger?: Logger;
  /** Override settings for this worker only. */
  lockTimeout?: number;
  heartbeatInterval?: number;
  /** Seconds of silence after which this worker counts as gone (0: no liveness beat). Default: the `livenessTimeout` setting (12). */
  livenessTimeout?: number;
  maxAttempts?: number;
  maxRunTime?: number;
  /**
   * Prometheus metrics (docs/observability.md): `true` keeps them in a registry of the worker's
   * own (`worker.metricsRegistry()`, `worker.collectMetrics()`); a prom-client `Registry` adds
   * them to it. Default false: nothing is counted and prom-client is not loaded.
   */
  metrics?: boolean | Registry;
  /** Milliseconds a success may wait for others to share its write. Default 0: writes start as soon as the previous one ends. */
  settleFlushMs?: number;
}

export const WORKER_ID_MAX = 64;

/**
 * The longest --duration and --grace: 100 years. A run's end is stored in milliseconds in a
 * BIGINT (the worker registry's run_until), which 1e16 seconds overflowed: the worker ran but
 * was missing from the registry.
 */
export const MAX_RUN_SECONDS = 3_153_600_000;
export const DURATION_EXPECTED = `seconds >= 0 (0 = run until stopped) and at most ${MAX_RUN_SECONDS} (100 years)`;
export const GRACE_EXPECTED = `seconds >= 0 and at most ${MAX_RUN_SECONDS} (100 years)`;

export function defaultWorkerId(): string {
  const suffix = randomBytes(4).toString('hex');
  const tail = `:${process.pid}:${suffix}`;
  const host = os.hostname().slice(0, WORKER_ID_MAX - tail.length);
  return `${host}${tail}`;
}

function shown(value: unknown): string {
  return typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
}

function check(ok: boolean, flag: string, value: unknown, expected: string): void {
  if (!ok) throw new ConfigError(`Invalid ${flag}: ${shown(value)} — expected ${expected}`);
}

/** Every option createWorker() knows: a misspelt one (`concurency`) is an error, not ignored. */
const KNOWN: ReadonlySet<string> = new Set(
  // A record, so that an option added to WorkerOptions and not here fails to compile.
  Object.keys({
    queues: true, excludeQueues: true, concurrency: true, prefetch: true, sleep: true, duration: true, grace: true, runBudget: true, batch: true,
    maxTasks: true, workerId: true, names: true, connection: true, clock: true, logger: true, lockTimeout: true, heartbeatInterval: true,
    livenessTimeout: true, maxAttempts: true, maxRunTime: true, metrics: true, settleFlushMs: true,
  } satisfies Record<keyof WorkerOptions, true>),
);

/**
 * Validates the options. Those without a settings counterpart are named by their CLI flags (the
 * CLI passes its flags through here); the settings' overrides (lockTimeout, …) are checked as
 * the settings are, so createWorker() refuses what `--lock-timeout` and configure() refuse.
 */
export function checkWorkerOptions(o: WorkerOptions): void {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError(`Invalid worker options: ${shown(o)} — expected an object`);
  const unknown = Object.keys(o).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) {
    const meant = unknown.length === 1 ? closestName(unknown[0]!, [...KNOWN]) : null;
    throw new ConfigError(`Unknown worker option ${unknown.map((k) => JSON.stringify(k)).join(', ')} — ${meant ? `did you mean ${meant}? ` : ''}expected one of ${[...KNOWN].join(', ')}`);
  }
  for (const key of ['lockTimeout', 'heartbeatInterval', 'maxAttempts', 'maxRunTime'] as const) {
    if (o[key] !== undefined) parseWithSpec(key, o[key], 'the worker options');
  }
  if (o.settleFlushMs !== undefined) {
    check(typeof o.settleFlushMs === 'number' && Number.isFinite(o.settleFlushMs) && o.settleFlushMs >= 0, 'settleFlushMs', o.settleFlushMs, 'milliseconds >= 0');
  }
  if (o.names !== undefined) {
    check(Array.isArray(o.names) && o.names.every((n) => typeof n === 'string' && n.length > 0), 'names', o.names, 'an array of task names');
  }
  if (o.workerId !== undefined) {
    check(typeof o.workerId === 'string' && o.workerId.trim().length > 0, '--worker-id', o.workerId, 'a non-empty worker id');
    check(o.workerId.length <= WORKER_ID_MAX, '--worker-id', o.workerId, `at most ${WORKER_ID_MAX} characters`);
  }
  const runSeconds = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX_RUN_SECONDS;
  if (o.duration !== undefined) check(runSeconds(o.duration), '--duration', o.duration, DURATION_EXPECTED);
  if (o.grace !== undefined) check(runSeconds(o.grace), '--grace', o.grace, GRACE_EXPECTED);
  if (o.sleep !== undefined) {
    check(typeof o.sleep === 'number' && Number.isFinite(o.sleep) && o.sleep > 0, '--sleep', o.sleep, 'a finite number of seconds > 0');
  }
  if (o.maxTasks !== undefined && o.maxTasks !== null) {
    check(Number.isInteger(o.maxTasks) && o.maxTasks > 0, '--max-tasks', o.maxTasks, 'an integer >= 1');
  }
  if (o.concurrency !== undefined) {
    check(Number.isInteger(o.concurrency) && o.concurrency >= 1 && o.concurrency <= 1000, '--concurrency', o.concurrency, 'an integer from 1 to 1000');
  }
  if (o.prefetch !== undefined) {
    check(o.prefetch === 'auto' || (Number.isInteger(o.prefetch) && o.prefetch >= 0 && o.prefetch <= 10000), '--prefetch', o.prefetch, '"auto" or an integer from 0 to 10000');
  }
  for (const [flag, list] of [
    ['--queue', o.queues],
    ['--exclude-queues', o.excludeQueues],
  ] as const) {
    if (list === undefined || list === null) continue;
    check(Array.isArray(list) && list.length > 0 && list.every((q) => typeof q === 'string' && q.length > 0 && q.length <= 190), flag, list, 'a comma-separated list of queue names');
  }
  if (o.metrics !== undefined) {
    const m = o.metrics as unknown;
    const registryLike = typeof m === 'object' && m !== null && typeof (m as { metrics?: unknown }).metrics === 'function' && typeof (m as { getSingleMetric?: unknown }).getSingleMetric === 'function';
    check(typeof m === 'boolean' || registryLike, 'metrics', m === null || typeof m !== 'object' ? m : '[object]', 'true, false or a prom-client Registry');
  }
  if (o.livenessTimeout !== undefined) parseWithSpec('livenessTimeout', o.livenessTimeout, '--liveness-timeout');
  if (o.queues && o.excludeQueues) {
    throw new ConfigError('Invalid --exclude-queues: it cannot be combined with --queue — --queue already takes only the queues it names');
  }
}

/**
 * A name in `names` that no definition in this process registered: the worker would claim its
 * tasks, find nothing to run them with, and give each back not due for another minute, again and
 * again (a task file that a bundler dropped as an unused import looks just like this).
 */
export function checkNamesRegistered(names: readonly string[] | undefined, registered: readonly string[]): void {
  if (!names) return;
  const missing = names.filter((n) => !registered.includes(n));
  if (missing.length === 0) return;
  throw new ConfigError(
    `Invalid names: ${missing.map((n) => JSON.stringify(n)).join(', ')} — expected tasks registered in this process (import the files that define them before the worker starts; registered: ${registered.join(', ') || 'none'})`,
  );
}

/** Splits `a,b , c` into names; empty parts are errors. */
export function parseQueueList(value: string, flag: string): string[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw new ConfigError(`Invalid ${flag}: ${JSON.stringify(value)} — expected a comma-separated list of queue names`);
  return parts;
}

/**
 * The heartbeat interval (ms): a lease must be renewed well before it expires. An explicit
 * interval that is not shorter than the lock timeout is an error; a configured one that is too
 * long for a shorter lock timeout (e.g. only --lock-timeout 2 was given) becomes a third of it.
 */
export function heartbeatIntervalMs(explicitSeconds: number | undefined, configuredSeconds: number, lockTimeoutMs: number): number {
  const hb = (explicitSeconds ?? configuredSeconds) * 1000;
  if (explicitSeconds !== undefined && hb >= lockTimeoutMs) {
    throw new ConfigError(
      `Invalid --heartbeat-interval: ${explicitSeconds} — expected fewer seconds than --lock-timeout (${lockTimeoutMs / 1000}), or leases expire between heartbeats`,
    );
  }
  // An explicit interval shorter than the lock timeout is the operator's choice and stays.
  return Math.round(explicitSeconds === undefined && hb > lockTimeoutMs / 2 ? lockTimeoutMs / 3 : hb);
}

const AUTO_PREFETCH_MAX = 500;
const AUTO_PREFETCH_WORK_MS = 100;

/**
 * The automatic prefetch: enough tasks for about 100 ms of work per slot at the measured task
 * duration, at most 500, so short tasks are claimed hundreds at a time and a worker of
 * one-second tasks does not hoard work other workers could run; the concurrency until a duration
 * is known (`avgTaskMs` < 0).
 */
export function autoPrefetch(concurrency: number, avgTaskMs: number): number {
  if (avgTaskMs < 0) return concurrency;
  return Math.min(AUTO_PREFETCH_MAX, Math.floor((concurrency * AUTO_PREFETCH_WORK_MS) / Math.max(avgTaskMs, 0.01)));
}

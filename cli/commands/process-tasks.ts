/**
 * `bgtasks process-tasks`: load the task files and run a worker until the duration, the batch or
 * a signal ends it. SIGINT/SIGTERM stop gracefully (running tasks get --grace seconds, then are
 * released with their attempt given back); a second signal stops at once.
 */
import { resolveSettings } from '../../core/config/settings.js';
import { createLogger, LineBuffer, setLogger, type Logger } from '../../core/base/log.js';
import { discoverTasks, startFindingTasks } from '../../core/definition/loader.js';
import { captureTaskOutput } from '../../core/worker/log-capture.js';
import { holdYoungGeneration } from '../young-generation.js';
import { runMigrations } from '../../core/store/migrate.js';
import { reachableStore } from '../../core/store/open.js';
import { Worker } from '../../core/worker/worker.js';
import { checkWorkerOptions, defaultWorkerId, DURATION_EXPECTED, GRACE_EXPECTED, heartbeatIntervalMs, MAX_RUN_SECONDS, parseQueueList, type WorkerOptions } from '../../core/worker/options.js';
import { DEV_DATABASE_ENV, flagSetting, numberFlag, overridesFrom, UsageError, type DbFlags } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { exitWhenFlushed, holdsOutput, onOutputClosed, outputClosed } from '../output.js';
import { onTerminal, startupDelayApplies, startupDelayMs } from '../startup-delay.js';
import { watchLauncher } from '../launcher.js';
import { metricsHostFlag, metricsPortFlag, serveMetrics, type MetricsServer } from '../metrics-server.js';
import { missingSqliteFile, refuseMissingSqliteFile } from '../open-store.js';

export interface ProcessTasksFlags extends DbFlags {
  duration?: string;
  batch?: boolean;
  maxTasks?: string;
  sleep?: string;
  queue?: string;
  excludeQueues?: string;
  concurrency?: string;
  prefetch?: string;
  grace?: string;
  workerId?: string;
  migrate?: boolean;
  taskFiles?: string;
  lockTimeout?: string;
  heartbeatInterval?: string;
  livenessTimeout?: string;
  startupDelay?: boolean;
  runBudget?: boolean;
  logFormat?: string;
  verbose?: boolean;
  quiet?: boolean;
  connection?: string;
  dev?: boolean;
  logStd?: boolean;
  metricsPort?: string;
  metricsHost?: string;
}

export function makeLogger(flags: { logFormat?: string; verbose?: boolean; quiet?: boolean }, base: Record<string, unknown> = {}): Logger {
  const format = flags.logFormat ?? 'human';
  if (format !== 'human' && format !== 'json') throw new UsageError(`Invalid --log-format: ${JSON.stringify(format)} — expected "human" or "json"`);
  if (flags.verbose && flags.quiet) throw new UsageError('Invalid flags: --verbose and --quiet cannot be used together');
  // Bound now: --log-std later replaces process.stdout.write, and log lines must bypass that.
  const out = process.stdout.write.bind(process.stdout);
  // A line per task: lines leave together, once per turn of the event loop (see LineBuffer).
  const lines = new LineBuffer((chunk) => {
    if (!outputClosed()) out(chunk);
  });
  holdsOutput(lines.flush);
  return createLogger({
    format,
    level: flags.verbose ? 'debug' : flags.quiet ? 'warn' : 'info',
    write: lines.line,
    base,
  });
}

/**
 * An empty `--queue` or `--exclude-queues` (a crontab's `--queue "$QUEUE"` with the variable
 * unset) is no filter, as the reference reads it: every queue. Not given at all is the same.
 */
function queueFlag(value: string | undefined, flag: string): string[] | null {
  return value === undefined || value.trim() === '' ? null : parseQueueList(value, flag);
}

/** The one-line notices for empty queue flags (empty, not absent: the operator may not know). */
export function emptyQueueNotices(flags: Pick<ProcessTasksFlags, 'queue' | 'excludeQueues'>): string[] {
  const out: string[] = [];
  if (flags.queue?.trim() === '') out.push('bgtasks: --queue is empty: taking tasks of every queue, and tasks without one');
  if (flags.excludeQueues?.trim() === '') out.push('bgtasks: --exclude-queues is empty: excluding no queue');
  return out;
}

/** Turns the flags into worker options (every value checked, errors naming the flag). */
export function workerOptionsFrom(flags: ProcessTasksFlags): WorkerOptions {
  const o: WorkerOptions = {
    duration: numberFlag(flags.duration, '--duration', DURATION_EXPECTED, (n) => n >= 0 && n <= MAX_RUN_SECONDS),
    batch: flags.batch ?? false,
    maxTasks: numberFlag(flags.maxTasks, '--max-tasks', 'an integer >= 1', (n) => Number.isInteger(n) && n >= 1),
    sleep: flagSetting('sleep', flags.sleep, '--sleep') as number | undefined,
    grace: numberFlag(flags.grace, '--grace', GRACE_EXPECTED, (n) => n >= 0 && n <= MAX_RUN_SECONDS),
    concurrency: flagSetting('concurrency', flags.concurrency, '--concurrency') as number | undefined,
    prefetch: flagSetting('prefetch', flags.prefetch, '--prefetch') as number | 'auto' | undefined,
    lockTimeout: flagSetting('lockTimeout', flags.lockTimeout, '--lock-timeout') as number | undefined,
    heartbeatInterval: flagSetting('heartbeatInterval', flags.heartbeatInterval, '--heartbeat-interval') as number | undefined,
    livenessTimeout: flagSetting('livenessTimeout', flags.livenessTimeout, '--liveness-timeout') as number | undefined,
    queues: queueFlag(flags.queue, '--queue'),
    excludeQueues: queueFlag(flags.excludeQueues, '--exclude-queues'),
    connection: flags.connection ?? null,
  };
  if (flags.workerId !== undefined) o.workerId = flags.workerId;
  if (flags.runBudget === false) o.runBudget = false;
  for (const k of Object.keys(o) as Array<keyof WorkerOptions>) if (o[k] === undefined) delete o[k];
  checkWorkerOptions(o);
  return o;
}

export async function processTasks(flags: ProcessTasksFlags): Promise<number> {
  const options = workerOptionsFrom(flags);
  const metricsPort = metricsPortFlag(flags.metricsPort);
  const metricsHost = metricsHostFlag(flags.metricsHost, metricsPort);
  if (flags.dev && !process.env.BGTASKS_DEV_CHILD) {
    if (flags.batch) {
      process.stderr.write('bgtasks: --dev is ignored with --batch (a batch run ends by itself)\n');
    } else {
      const { devSupervisor } = await import('./dev.js');
      const at = process.argv.indexOf('process-tasks');
      return devSupervisor(process.argv.slice(at + 1), flags);
    }
  }
  for (const notice of emptyQueueNotices(flags)) process.stderr.write(`${notice}\n`);
  const devChild = Boolean(process.env.BGTASKS_DEV_CHILD);
  const fromSupervisor = devChild ? process.env[DEV_DATABASE_ENV] : undefined;
  if (fromSupervisor !== undefined) {
    // The --dev supervisor's --database (see dev.ts); task code has no need to see it.
    flags = { ...flags, database: fromSupervisor };
    delete process.env[DEV_DATABASE_ENV];
  }
  const overrides = overridesFrom(flags);
  if (flags.taskFiles !== undefined) overrides.taskFiles = flagSetting('taskFiles', flags.taskFiles, '--task-files') as string[];
  const fileSettings = await resolveSettings({ overrides });
  const workerId = options.workerId ?? defaultWorkerId();
  const log = makeLogger(flags, { worker: workerId });
  setLogger(log);
  const uncapture = flags.logStd ? captureTaskOutput(log) : null;
  // The database first: knex and the driver load (and connect) before tsx's hooks exist, which
  // would otherwise see every module they import.
  // A --connection that only a task file's configure() declares is opened after the files load.
  // Nor a SQLite file that is not there yet: the task files may name another database, and
  // opening this one would create its file (checked once they have loaded).
  const knownEarly =
    (!options.connection || options.connection === 'default' || Object.hasOwn(fileSettings.connections, options.connection)) && missingSqliteFile(fileSettings, options.connection) === null;
  // While the database opens: the task files are found, and bgtasks' public entry loads before
  // tsx's hooks exist, so that a task file's `import … from 'bgtasks'` finds it loaded. Loaded
  // after, each of its ~100 modules passed through tsx's loader thread: ~300 ms of a cold start.
  // Awaited in the old order, so a failure is reported as before (the database's first).
  const found = startFindingTasks(fileSettings.taskFiles, fileSettings.taskFilesBase);
  const publicEntry = import('../../core/index.js');
  publicEntry.catch(() => {});
  if (knownEarly) await reachableStore(fileSettings, options.connection);
  await publicEntry;
  const { files, names } = await discoverTasks(fileSettings.taskFiles, fileSettings.taskFilesBase, found);
  // Resolved again: a task file may call configure(), which ranks above the environment and the
  // config file (the command line still wins).
  const settings = await resolveSettings({ overrides });
  // The worker checks the lease flags against each other too; here a bad pair is a usage error
  // before the database's state is (a SQLite file that is not there included).
  heartbeatIntervalMs(options.heartbeatInterval, settings.heartbeatInterval, Math.round((options.lockTimeout ?? settings.lockTimeout) * 1000));
  // Only --migrate creates a SQLite file that is not there (see refuseMissingSqliteFile).
  if (!flags.migrate) refuseMissingSqliteFile(settings, options.connection);
  if (!knownEarly) await reachableStore(settings, options.connection);
  log.info('task files loaded', { files: files.length, tasks: names.join(',') });
  if (flags.migrate) {
    const applied = await runMigrations((await reachableStore(settings, options.connection)).conn, settings.tablePrefix);
    if (applied.length > 0) log.info('migrated', { applied: applied.join(',') });
  }
  if (startupDelayApplies({ flag: flags.startupDelay, duration: options.duration, interactive: onTerminal() })) {
    // Many workers launched by the same cron tick should not all poll at the same instant.
    const ms = startupDelayMs();
    log.debug('start-up delay', { ms });
    await new Promise((r) => setTimeout(r, ms));
  }
  // Listening before the worker starts: a port in use stops the command before it claims anything.
  let metricsServer: MetricsServer | null = null;
  if (metricsPort !== undefined) {
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    options.metrics = registry;
    metricsServer = await serveMetrics({ host: metricsHost, port: metricsPort, collect: () => registry.metrics(), contentType: registry.contentType });
    log.info('metrics served', { url: `http://${metricsHost.includes(':') ? `[${metricsHost}]` : metricsHost}:${metricsServer.port}/metrics` });
  }
  const running = new Worker({ ...options, workerId, logger: log });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      // Under --dev the supervisor passes its signals on and stops the worker to reload, having
      // said why: a warning at every reload was noise.
      if (devChild) log.info(`${sig} received (under --dev: a reload or a stop): no new tasks; running tasks get --grace seconds to finish (send it again to stop now)`);
      else log.warn(`${sig} received: no new tasks; running tasks get --grace seconds to finish (send it again to stop now)`);
      void running.stop();
    } else {
      log.warn(`${sig} received again: aborting running tasks and releasing them`);
      void running.stopNow();
    }
  };
  // Task code must not kill the worker with a forgotten promise: log it (naming the task when
  // only one runs, so the rejection can only be its) and go on.
  const onRejection = (reason: unknown) => {
    const tasks = running.runningTasks();
    log.error('unhandled promise rejection in task code (ignored; the worker keeps running)', {
      error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason),
      ...(tasks.length === 1 ? { id: tasks[0]!.id, name: tasks[0]!.name } : { running: tasks.map((t) => `${t.name}#${t.id}`).join(',') }),
    });
  };
  // An uncaught exception leaves the process in an unknown state: give the in-flight tasks back
  // (attempts returned) and exit non-zero so the supervisor starts a fresh worker.
  const onException = (err: unknown) => {
    log.error('uncaught exception: releasing in-flight tasks and exiting', {
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
    const exit = () => void exitWhenFlushed(EXIT.FAILURE);
    setTimeout(() => process.exit(EXIT.FAILURE), 10_000).unref();
    running.stopNow().then(exit, exit);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Under --dev: a supervisor that is gone (killed outright) closes this channel; stop gracefully.
  const onOrphaned = () => {
    log.warn('the --dev supervisor is gone; stopping');
    void running.stop();
  };
  if (process.env.BGTASKS_DEV_CHILD && process.connected) {
    process.once('disconnect', onOrphaned);
    process.channel?.unref();
  }
  // A reader that closed our standard output (`| head`, a log shipper that died) leaves the log
  // nowhere to go: stop as on SIGTERM, and say so where it may still be read.
  const offOutputClosed = onOutputClosed(() => {
    process.stderr.write('bgtasks: standard output was closed by its reader; stopping the worker (running tasks get --grace seconds)\n');
    void running.stop();
  });
  // Under npx or npm run: a launcher that exits without stopping us (see launcher.ts). A --dev
  // child has its supervisor's channel instead.
  const unwatchLauncher = process.env.BGTASKS_DEV_CHILD
    ? () => {}
    : watchLauncher((launcher) => {
        log.warn(`${launcher} exited without stopping this worker: no new tasks; running tasks get --grace seconds to finish`);
        void running.stop();
      });
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  let releaseYoung = () => {};
  try {
    await running.start(settings);

    releaseYoung = holdYoungGeneration();
    const summary = await running.done;
    return summary.reason === 'fatal' ? EXIT.FAILURE : EXIT.OK;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('disconnect', onOrphaned);
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    offOutputClosed();
    unwatchLauncher();
    uncapture?.();
    releaseYoung();
    await metricsServer?.close();
  }
}

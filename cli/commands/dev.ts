/**
 * `bgtasks process-tasks --dev`: a supervisor that runs the worker as a child process and restarts
 * it when a task file or other project source changes. A restart is graceful: running tasks get
 * their --grace to finish (then are released), then the new code starts. A task file that fails
 * to import is shown, and the supervisor keeps watching: saving a fix starts the worker again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveSettings } from '../../core/config/settings.js';
import { DEV_DATABASE_ENV, flagSetting, overridesFrom, type DbFlags } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { isHeapSizeFlag } from '../young-generation.js';
import { setLongTimeout } from '../../core/base/long-timer.js';
import { watchLauncher } from '../launcher.js';

const SOURCE_EXT = /\.(ts|mts|cts|tsx|js|mjs|cjs|json)$/;
const SKIPPED_DIRS = new Set(['node_modules', 'dist', '.git']);
const DEBOUNCE_MS = 150;

/** True for paths the supervisor does not watch (dependencies, build output, data files). */
export function ignoredByDev(file: string, isFile: boolean | undefined): boolean {
  const parts = file.split(path.sep);
  if (parts.some((p) => SKIPPED_DIRS.has(p))) return true;
  return isFile === true && !SOURCE_EXT.test(file);
}

function say(text: string): void {
  process.stdout.write(`${new Date().toISOString()} DEV   ${text}\n`);
}

/**
 * The child's arguments: the same command without --dev, without --duration (the supervisor
 * keeps it) and without --database (passed in its environment: see DEV_DATABASE_ENV).
 */
export function childArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--dev') continue;
    if (a === '--duration' || a === '--database') {
      i++;
      continue;
    }
    if (a.startsWith('--duration=') || a.startsWith('--database=')) continue;
    out.push(a);
  }
  return out;
}

export async function devSupervisor(argv: readonly string[], flags: DbFlags & { taskFiles?: string; duration?: string }): Promise<number> {
  const overrides = overridesFrom(flags);
  if (flags.taskFiles !== undefined) overrides.taskFiles = flagSetting('taskFiles', flags.taskFiles, '--task-files') as string[];
  const settings = await resolveSettings({ overrides });
  const roots = [...new Set([process.cwd(), settings.taskFilesBase])];
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'index.js');
  const args = ['process-tasks', ...childArgs(argv)];

  let child: ChildProcess | null = null;
  let restarting = false;
  let stopping = false;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => (finish = r));

  const start = () => {
    restarting = false;
    // Its own process group: Ctrl+C in a terminal signals the whole foreground group, and the
    // worker must hear it once (from us), or it would take it as the second, immediate stop.
    // The IPC channel lets the worker notice a supervisor that died without forwarding a signal
    // (SIGKILL): it then stops on its own instead of running on, orphaned.
    // Node's own heap flags go along (see young-generation.ts: a semi-space flag of the user's
    // wins); other node flags (--inspect, …) stay with the supervisor.
    const heapFlags = process.execArgv.filter(isHeapSizeFlag);
    const c = spawn(process.execPath, [...heapFlags, cli, ...args], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      detached: true,
      env: { ...process.env, BGTASKS_DEV_CHILD: '1', ...(flags.database !== undefined ? { [DEV_DATABASE_ENV]: flags.database } : {}) },
    });
    child = c;
    c.on('exit', (code, signal) => {
      if (child === c) child = null;
      if (stopping) return finish(EXIT.OK);
      if (restarting) return start();
      if (code === 0 && !signal) {
        say('the worker finished; exiting');
        return finish(EXIT.OK);
      }
      say(`the worker exited (${signal ?? `code ${code}`}); fix the error and save a file: it restarts on the next change`);
    });
  };

  const { watch } = await import('chokidar');
  const watcher = watch(roots, {
    ignoreInitial: true,
    ignored: (p: string, stats?: { isFile(): boolean }) => ignoredByDev(p, stats?.isFile()),
  });
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));

  let timer: NodeJS.Timeout | null = null;
  const changed = new Set<string>();
  watcher.on('all', (_event: string, file: string) => {
    changed.add(path.relative(process.cwd(), file) || file);
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      const files = [...changed];
      changed.clear();
      if (stopping) return;
      say(`changed: ${files.join(', ')}; restarting the worker`);
      if (child) {
        restarting = true;
        child.kill('SIGTERM');
      } else {
        start();
      }
    }, DEBOUNCE_MS);
  });

  // `why` is the signal received, or what stops the worker as one would (no signal came then).
  const stop = (sig: NodeJS.Signals, why = `${sig} received`) => {
    if (!stopping) say(`${why}; stopping the worker`);
    stopping = true;
    // The worker handles SIGINT and SIGTERM; SIGHUP (a closed terminal) would end it at once,
    // its running tasks left to their leases, so it gets the SIGTERM the docs promise.
    if (child) child.kill(sig === 'SIGHUP' ? 'SIGTERM' : sig);
    else finish(EXIT.OK);
  };
  // Node passes the signal's number after its name: not a reason to print.
  const onSignal = (sig: NodeJS.Signals) => stop(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Closing the terminal (SIGHUP) reaches only us: the worker has its own process group.
  process.on('SIGHUP', onSignal);
  const unwatchLauncher = watchLauncher((launcher) => stop('SIGTERM', `${launcher} exited without stopping the supervisor`));
  const duration = flags.duration !== undefined ? Number(flags.duration) : 0;
  const durationTimer = duration > 0 ? setLongTimeout(() => stop('SIGTERM', `--duration ${duration} s is up`), duration * 1000) : null;

  say(`watching ${roots.join(', ')} (node_modules, dist and .git skipped)`);
  start();
  const code = await finished;
  durationTimer?.clear();
  if (timer) clearTimeout(timer);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGHUP', onSignal);
  unwatchLauncher();
  await watcher.close();
  return code;
}

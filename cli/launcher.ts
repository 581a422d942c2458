/**
 * A worker started through a package manager (`npx bgtasks …`, `npm run worker`, yarn, pnpm) runs
 * under a shell under that package manager, which does not wait for it when it is signalled:
 * SIGTERM to `npx bgtasks process-tasks` alone (systemd's KillMode=mixed, `kill PID` from a shell
 * or a supervisor that signals only its child) ended npm and its shell, and the worker ran on,
 * orphaned under PID 1. Such a worker watches its parent, and stops gracefully when it is gone.
 *
 * A worker started directly (node_modules/.bin/bgtasks, node …/dist/cli/index.js) is left alone:
 * `nohup bgtasks process-tasks &` may outlive its shell on purpose.
 */

let parentAtStart: number | null = null;

/**
 * Notes the parent process now, first thing at start-up: a launcher killed while the task files
 * load must still count as gone when the worker starts watching.
 */
export function noteParent(): void {
  parentAtStart ??= process.ppid;
}

/** Whether this process was started by a package manager's run or exec (npm sets this for all). */
export function launchedByPackageManager(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.npm_lifecycle_event);
}

/** The launcher as the user typed it: npx, npm, yarn or pnpm. */
function launcherName(env: NodeJS.ProcessEnv): string {
  const agent = (env.npm_config_user_agent ?? '').split('/')[0] || 'the package manager';
  return agent === 'npm' && env.npm_lifecycle_event === 'npx' ? 'npx' : agent;
}

/**
 * Calls `onGone` once when the parent process of a worker started by a package manager exits
 * (its parent pid changes: the orphan was re-parented). Returns a function that stops watching.
 * Polls every `everyMs` (a getppid() call; the timer does not keep the process alive).
 */
export function watchLauncher(onGone: (launcher: string) => void, everyMs = 500): () => void {
  if (!launchedByPackageManager()) return () => {};
  noteParent();
  const parent = parentAtStart!;
  const name = launcherName(process.env);
  const check = () => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone(`${name} (its process ${parent})`);
  };
  const timer = setInterval(check, everyMs);
  setImmediate(check);
  timer.unref();
  return () => clearInterval(timer);
}

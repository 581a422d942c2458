/**
 * The real compiled CLI, spawned the way a user runs it: `node dist/cli/index.js process-tasks …`
 * in a temporary project whose `tasks.ts` (loaded through tsx) defines the no-op task and imports
 * `bgtasks` from its node_modules.
 *
 * That package is a snapshot of `dist/` taken when the run starts (with package.json, and
 * node_modules linked to this repository's): a rebuild during a long run, e.g. by `npm test` in
 * the same checkout, cannot change the code under measurement halfway or catch it half-written.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchTables } from './databases.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** tsx's loader by absolute URL (for `--import` in children whose cwd has no tsx). */
export const TSX_LOADER = pathToFileURL(path.join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

const TASKS_TS = `import { background } from 'bgtasks';

// A no-op: the bench measures the queue, not the work.
export const benchNoop = background(function benchNoop(n: number): number {
  return n;
});
`;

export interface BenchProject {
  dir: string;
  /** The snapshot's `dist/cli/index.js`. */
  cli: string;
  remove(): void;
}

/**
 * A temporary ESM project with `tasks.ts`, and `node_modules/bgtasks` pointing at a snapshot of
 * this repository's package (package.json and dist/). `files` adds files or replaces `tasks.ts`;
 * `link` names packages of this repository's node_modules to make importable from the project.
 */
export function makeProject(files: Record<string, string> = {}, link: string[] = []): BenchProject {
  const root = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-bench-proj-'));
  const pkg = path.join(root, 'bgtasks');
  mkdirSync(pkg);
  copyFileSync(path.join(REPO, 'package.json'), path.join(pkg, 'package.json'));
  cpSync(path.join(REPO, 'dist'), path.join(pkg, 'dist'), { recursive: true });
  symlinkSync(path.join(REPO, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
  const dir = path.join(root, 'app');
  mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  symlinkSync(pkg, path.join(dir, 'node_modules', 'bgtasks'), 'dir');
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'bench-app', type: 'module', private: true }));
  writeFileSync(path.join(dir, 'tasks.ts'), TASKS_TS);
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text);
  for (const p of link) symlinkSync(path.join(REPO, 'node_modules', p), path.join(dir, 'node_modules', p), 'dir');
  return { dir, cli: path.join(pkg, 'dist', 'cli', 'index.js'), remove: () => rmSync(root, { recursive: true, force: true }) };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Monotonic time of the exit. */
  atPerf: number;
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** Epoch ms just before spawn: comparable with the timestamps workers write into rows. */
  spawnedAtMs: number;
  spawnedAtPerf: number;
  exited: Promise<Exit>;
}

const children = new Set<ChildProcess>();

/** Output kept per stream: enough for an error message, bounded for 100k-task runs. */
const KEEP_CHARS = 64 * 1024;

export interface StartOptions {
  /** Node options placed before the CLI path (e.g. --cpu-prof, --import). */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

/** Starts `bgtasks <command> --database … --table-prefix … <args>` on a scenario's tables. */
export function startCli(project: BenchProject, tables: BenchTables, command: string, args: string[], opts: StartOptions = {}): WorkerProcess {
  const env: NodeJS.ProcessEnv = {};
  // Our own BGTASKS_* settings must not leak into the worker: the flags say everything.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BGTASKS_')) env[k] = v;
  Object.assign(env, opts.env ?? {});
  const argv = [...(opts.nodeArgs ?? []), project.cli, command, '--database', tables.url, '--table-prefix', tables.prefix, ...args];
  const spawnedAtMs = Date.now();
  const spawnedAtPerf = performance.now();
  const child = spawn(process.execPath, argv, { cwd: project.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-KEEP_CHARS)));
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-KEEP_CHARS)));
  const exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout: out, stderr: err, atPerf: performance.now() });
    }),
  );
  return { child, pid: child.pid!, spawnedAtMs, spawnedAtPerf, exited };
}

/** Starts `bgtasks process-tasks` on a scenario's tables with `args`. */
export function startWorker(project: BenchProject, tables: BenchTables, args: string[], opts: StartOptions = {}): WorkerProcess {
  return startCli(project, tables, 'process-tasks', args, opts);
}

/** True when the compiled CLI has `command` (an unknown one would print the program's help). */
export function cliHasCommand(project: BenchProject, command: string): boolean {
  const r = spawnSync(process.execPath, [project.cli, command, '--help'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes(`Usage: bgtasks ${command} `);
}

/** Node options that time every statement of a spawned CLI into `logFile` (see query-timer-preload.ts). */
export function queryLogArgs(logFile: string): { nodeArgs: string[]; env: Record<string, string> } {
  const preload = pathToFileURL(path.join(REPO, 'bench', 'lib', 'query-timer-preload.ts')).href;
  return { nodeArgs: ['--import', TSX_LOADER, '--import', preload], env: { BENCH_QUERY_LOG: logFile } };
}

/** Waits for a worker to exit and throws with its output unless it exited 0. */
export async function succeeded(w: WorkerProcess, what: string): Promise<Exit> {
  const e = await w.exited;
  if (e.code !== 0) {
    throw new Error(`${what}: the worker exited with ${e.code ?? e.signal}\n${e.stderr.slice(-4000)}${e.stdout.slice(-4000)}`);
  }
  return e;
}

/** Stops a long-running worker gracefully (SIGTERM) and waits for it. */
export async function stopWorker(w: WorkerProcess, what: string): Promise<Exit> {
  w.child.kill('SIGTERM');
  return succeeded(w, what);
}

/** Counts a process started by other helpers among those killChildren() kills. */
export function trackChild(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  children.add(child);
  child.on('close', () => children.delete(child));
}

/** Kills the workers an interrupted run left running (each by its own pid). */
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
}

/** A process's resident set size in KiB (Linux /proc; `ps` elsewhere), or null once it is gone. */
export function rssKb(pid: number): number | null {
  try {
    if (existsSync('/proc/self/status')) {
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) : null;
    }
    const out = execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    return out ? Number(out) : null;
  } catch {
    return null;
  }
}

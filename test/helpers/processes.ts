/**
 * Process and temp-dir bookkeeping for the fault-scenario helpers (private servers, pgbouncer,
 * network namespaces): every child is started in its own process group and tracked with its
 * descendants, every temp dir and namespace is tracked, and whatever a test forgot is removed
 * when the test process exits.
 *
 * Two layers make "nothing left behind" hold even when the test process dies hard:
 * - an `exit` handler removes what is still tracked (and says so on stderr, since a test that
 *   forgets `destroy()` is a bug to fix);
 * - a detached watchdog (leftover-watchdog.ts), told of every change through a pipe, removes what
 *   is still tracked when that pipe closes, i.e. after a SIGKILL, a crash or a Ctrl-C, none of
 *   which runs exit handlers.
 *
 * Children are unref'd, so a forgotten server never keeps mocha from exiting; waits here poll
 * with timers rather than waiting on child events, which keeps the event loop alive meanwhile.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  anyAlive,
  groupMembers,
  killTreeSync,
  leftoverKey,
  procStat,
  removeLeftoversSync,
  stillThere,
  treeOf,
  type Leftover,
  type ProcStat,
} from './leftovers.js';
import { TSX_LOADER } from './project.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Whether a helper can run here, and if not, why (printed in the skip notice). */
export interface Availability {
  ok: boolean;
  reason: string;
}

export const AVAILABLE: Availability = { ok: true, reason: '' };

export function unavailable(reason: string): Availability {
  return { ok: false, reason };
}

/**
 * In a mocha hook or test: when `a` is not ok, prints a NOTICE naming `what` and the reason, then
 * skips (mocha reports it as pending, never as passed).
 */
export function skipUnless(ctx: Mocha.Context, a: Availability, what: string): void {
  if (a.ok) return;
  process.stdout.write(`NOTICE: ${what} skipped (not counted as passed): ${a.reason}\n`);
  ctx.skip();
}

// ---------------------------------------------------------------------------------------------
// Tracking

const live = new Map<string, Leftover>();
let watchdog: ChildProcess | null = null;

function startWatchdog(): ChildProcess {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', TSX_LOADER, path.join(HERE, 'leftover-watchdog.ts')], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
    env,
  });
  child.unref();
  (child.stdin as net.Socket).unref();
  // Without a watchdog (it could not start, or died), the exit handler still cleans up after a
  // normal exit; only the hard-death cover is lost.
  child.on('error', () => {});
  child.stdin!.on('error', () => {});
  process.on('exit', onExit);
  return child;
}

function tell(msg: { add: Leftover } | { remove: string }): void {
  watchdog ??= startWatchdog();
  if (watchdog.stdin!.writable) watchdog.stdin!.write(JSON.stringify(msg) + '\n');
}

function onExit(): void {
  const left = [...live.values()].filter(stillThere);
  if (left.length === 0) return;
  process.stderr.write(`bgtasks test helpers: removing what a test left behind: ${left.map(leftoverKey).join(', ')}\n`);
  removeLeftoversSync(left);
}

/** Registers something to remove if the test process goes away first. */
export function track(l: Leftover): void {
  live.set(leftoverKey(l), l);
  tell({ add: l });
}

export function untrack(l: Leftover): void {
  const key = leftoverKey(l);
  if (live.delete(key)) tell({ remove: key });
}

/** What is tracked and still on the machine: empty once every helper was stopped and destroyed. */
export function leftovers(): Leftover[] {
  return [...live.values()].filter(stillThere);
}

// ---------------------------------------------------------------------------------------------
// Users, dirs, ports, polling

export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

/** The system user `name` from /etc/passwd, or null. */
export function systemUser(name: string): RunAs | null {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** A new temp dir `bgtasks-<prefix>-*`, tracked, owned by `owner` when given. */
export function makeTempDir(prefix: string, owner: RunAs | null = null): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `bgtasks-${prefix}-`));
  track({ kind: 'dir', path: dir });
  if (owner) chownSync(dir, owner.uid, owner.gid);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  untrack({ kind: 'dir', path: dir });
}

/** A port that was free on `host` a moment ago (bound to port 0, then closed). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `cond` every `everyMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function pollUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs: number, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The last `lines` lines of a log file ('' if it does not exist). */
export function logTail(file: string, lines = 30): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** The environment for a child, without variables that would redirect a database tool. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(PG|MYSQL|MARIADB|NODE_OPTIONS$)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------------
// Tracked children

export interface SpawnTrackedOptions {
  runAs?: RunAs | null;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where stdout and stderr go (appended); without it, `stdio` applies. */
  logFile?: string;
  stdio?: StdioOptions;
}

type TreeEntry = Extract<Leftover, { kind: 'tree' }>;
const entries = new WeakMap<ChildProcess, TreeEntry>();

/**
 * Starts `cmd` as the leader of a new process group (so the terminal's Ctrl-C does not reach it),
 * tracked with its descendants until they are gone.
 */
export function spawnTracked(cmd: string, args: string[], opts: SpawnTrackedOptions = {}): ChildProcess {
  const fd = opts.logFile ? openSync(opts.logFile, 'a') : null;
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, {
      detached: true,
      cwd: opts.cwd ?? os.tmpdir(),
      env: opts.env ?? cleanEnv(),
      stdio: fd !== null ? ['ignore', fd, fd] : (opts.stdio ?? 'pipe'),
      ...(opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
    });
  } finally {
    if (fd !== null) closeSync(fd);
  }
  child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    // spawn failed (e.g. ENOENT); the 'error' event tells the caller why.
    return child;
  }
  const entry: TreeEntry = { kind: 'tree', pid, startTime: procStat(pid)?.startTime ?? 0 };
  entries.set(child, entry);
  track(entry);
  child.on('exit', () => {
    if (groupMembers(pid).length === 0) untrack(entry);
  });
  return child;
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Waits until `child`, its group and the processes of `snapshot` are gone; true if in time. */
async function waitTreeGone(child: ChildProcess, snapshot: ProcStat[], timeoutMs: number): Promise<boolean> {
  const pid = child.pid!;
  const gone = () => hasExited(child) && !anyAlive(snapshot) && groupMembers(pid).length === 0;
  try {
    await pollUntil(gone, `process tree ${pid} to exit`, timeoutMs, 20);
  } catch {
    return false;
  }
  untrack(entries.get(child)!);
  return true;
}

/** The child, its group and its descendants now (empty once it has exited). */
export function treeOfChild(child: ChildProcess): ProcStat[] {
  const entry = entries.get(child);
  return entry ? treeOf(entry) : [];
}

/** SIGKILLs the child with its group and descendants, and waits until they are all gone. */
export async function killTree(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const entry = entries.get(child);
  if (!entry) return;
  const snapshot = killTreeSync(entry);
  if (!(await waitTreeGone(child, snapshot, timeoutMs))) {
    throw new Error(`process tree ${entry.pid} survived SIGKILL for ${timeoutMs} ms`);
  }
}

/**
 * Sends `signal` to the child (the server's own orderly shutdown) and waits up to `timeoutMs` for
 * its whole tree to exit; if that fails, kills the tree and throws: a hanging shutdown is a finding.
 */
export async function stopTree(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number, label: string): Promise<void> {
  if (!entries.has(child)) return;
  const snapshot = treeOfChild(child);
  if (!hasExited(child)) child.kill(signal);
  if (await waitTreeGone(child, snapshot, timeoutMs)) return;
  await killTree(child);
  throw new Error(`${label} did not stop within ${timeoutMs} ms of ${signal}; it was killed`);
}

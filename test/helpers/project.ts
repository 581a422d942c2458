/**
 * Spawned-CLI helpers: a temporary project that depends on this package (a node_modules symlink
 * to the repository), and functions that run the real compiled `bgtasks` binary in it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Availability } from './processes.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(REPO, 'dist', 'cli', 'index.js');
/** tsx's loader, by absolute URL: the temporary projects have no tsx of their own. */
export const TSX_LOADER = pathToFileURL(path.join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

export interface Project {
  dir: string;
  write(file: string, text: string): string;
  remove(): void;
}

/**
 * A temporary project with `package.json` (ESM) and `node_modules/bgtasks` pointing here; `link`
 * names other packages of ours (e.g. knex) to make importable from the project too.
 */
export function makeProject(files: Record<string, string> = {}, link: string[] = []): Project {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-proj-'));
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(REPO, path.join(dir, 'node_modules', 'bgtasks'), 'dir');
  for (const pkg of link) symlinkSync(path.join(REPO, 'node_modules', pkg), path.join(dir, 'node_modules', pkg), 'dir');
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true }));
  const p: Project = {
    dir,
    write(file, text) {
      const full = path.join(dir, file);
      mkdirSync(path.dirname(full), { recursive: true });
      writeFileSync(full, text);
      return full;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const [f, t] of Object.entries(files)) p.write(f, t);
  return p;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<RunResult>;
}

/** Environment for spawned processes: ours minus BGTASKS_* settings, plus `env`. */
export function childEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BGTASKS_') || k.startsWith('BGTASKS_TEST_')) base[k] = v;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

/** Starts a node process (`args` after the node binary) and collects its output. */
export function spawnNode(args: string[], cwd: string, env: Record<string, string | undefined> = {}, detached = false): Spawned {
  return collect(spawn(process.execPath, args, { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached }));
}

/** Collects a child's output. */
function collect(child: ChildProcess): Spawned {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<RunResult>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout: out, stderr: err })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

let utsProbe: Availability | null = null;

/** Whether a process can be given a host name of its own here (a UTS namespace: root, Linux). */
export function hostNamesAvailable(): Availability {
  if (utsProbe) return utsProbe;
  if (process.platform !== 'linux') return (utsProbe = { ok: false, reason: `host names of their own need Linux (this is ${process.platform})` });
  const r = spawnSync('unshare', ['--uts', 'hostname', 'bgtasks-probe'], { encoding: 'utf8', timeout: 10_000 });
  return (utsProbe = r.status === 0 ? { ok: true, reason: '' } : { ok: false, reason: `unshare --uts failed (root is needed): ${(r.stderr || r.error?.message || '').trim()}` });
}

/**
 * Starts `bgtasks <args>` in `cwd` in a UTS namespace of its own whose host name is `host`: to the
 * worker registry (os.hostname()), it runs on another machine. `unshare` and `sh` exec in place,
 * so the child's pid is the worker's own (a SIGKILL kills the worker). See hostNamesAvailable().
 */
export function startCliOnHost(host: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}): Spawned {
  return collect(spawn('unshare', ['--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', host, process.execPath, CLI, ...args], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Starts `bgtasks <args>` in `cwd`. */
export function startCli(args: string[], cwd: string, env: Record<string, string | undefined> = {}, detached = false): Spawned {
  return spawnNode([CLI, ...args], cwd, env, detached);
}

/** Runs `bgtasks <args>` to its end. */
export function runCli(args: string[], cwd: string, env: Record<string, string | undefined> = {}): Promise<RunResult> {
  return startCli(args, cwd, env).exited;
}

/** Runs a TypeScript file of the project through tsx (as an application script would). */
export function runScript(file: string, cwd: string, env: Record<string, string | undefined> = {}, args: string[] = []): Promise<RunResult> {
  return spawnNode(['--import', TSX_LOADER, file, ...args], cwd, env).exited;
}

/** Kills (SIGKILL) every child in `children` that is still running, waits for each, and empties the list. */
export async function killLeftovers(children: Spawned[]): Promise<void> {
  for (const c of children.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) {
      c.child.kill('SIGKILL');
      await c.exited;
    }
  }
}

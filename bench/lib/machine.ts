/** The machine description that goes with the figures: without it they mean little. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './cli.js';

export interface Machine {
  date: string;
  cpu: string;
  cores: number;
  memory: string;
  os: string;
  node: string;
  drivers: string;
  commit: string;
  /** Load averages (1, 5, 15 min) when the run started and ended: other work on the machine skews the figures. */
  loadStart: string;
  loadEnd: string;
  /** `node -e 0` start to exit (median of 5, ms) at the start and the end: how fast this VM is right now. */
  probeStart: string;
  probeEnd: string;
  /** Filled in per database as the scenarios open them. */
  databases: Record<string, string>;
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) return `${m[1]} (${os.type()} ${os.release()})`;
  } catch {
    // Not Linux: the kernel name is enough.
  }
  return `${os.type()} ${os.release()}`;
}

function packageVersion(name: string): string {
  const file = path.join(REPO, 'node_modules', name, 'package.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : 'not installed';
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'core', 'cli', 'migrations'], { cwd: REPO, encoding: 'utf8' }).trim();
    return dirty ? `${head} (with uncommitted changes in core/, cli/ or migrations/)` : head;
  } catch {
    return 'unknown';
  }
}

/**
 * Milliseconds for `node -e 0` to start and exit, median of 5. The same build measured about twice
 * as slow in one hour as in another on this VM; this figure, next to the results, says which kind
 * of hour a run had (about 60 ms on a good one).
 */
export function speedProbe(): string {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return `${times[2]!.toFixed(0)} ms`;
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(', ');
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    os: osName(),
    node: process.version,
    drivers: ['knex', 'sqlite3', 'mysql2', 'pg', 'tsx'].map((p) => `${p} ${packageVersion(p)}`).join(', '),
    commit: gitCommit(),
    loadStart: loadAverage(),
    loadEnd: '',
    probeStart: speedProbe(),
    probeEnd: '',
    databases: {},
  };
}

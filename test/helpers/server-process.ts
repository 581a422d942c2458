/**
 * The start / stop / kill cycle shared by the private servers and pgbouncer: one tracked process
 * tree per run, a bounded wait for readiness that fails fast (with the log tail) when the server
 * exits or never answers, an orderly stop with a bounded wait, and a crash (SIGKILL of the group).
 */
import type { ChildProcess } from 'node:child_process';
import { hasExited, killTree, logTail, spawnTracked, stopTree, type RunAs } from './processes.js';

export interface ServerLaunch {
  /** Names the server in errors, e.g. "private PostgreSQL on 127.0.0.1:40123". */
  label: string;
  command: string;
  args: string[];
  runAs: RunAs | null;
  env: NodeJS.ProcessEnv;
  /** The server's stdout and stderr are appended here. */
  logFile: string;
  /** The signal that asks for an orderly (fast) shutdown. */
  stopSignal: NodeJS.Signals;
  /** One readiness probe: true once the server answers a query. Never throws. */
  ready(): Promise<boolean>;
  startTimeoutMs: number;
  stopTimeoutMs: number;
}

export class ServerProcess {
  private child: ChildProcess | null = null;

  constructor(private readonly launch: ServerLaunch) {}

  /** The server process id while it runs. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get running(): boolean {
    return this.child !== null && !hasExited(this.child);
  }

  /** Starts the server and resolves once it answers; on failure nothing of it is left running. */
  async start(): Promise<void> {
    const l = this.launch;
    if (this.running) throw new Error(`${l.label} is already running (pid ${this.pid})`);
    const child = spawnTracked(l.command, l.args, { runAs: l.runAs, env: l.env, logFile: l.logFile });
    let spawnError: Error | null = null;
    child.once('error', (err) => (spawnError = err));
    this.child = child;
    const end = Date.now() + l.startTimeoutMs;
    for (;;) {
      if (spawnError) {
        this.child = null;
        throw new Error(`${l.label}: cannot run ${l.command}: ${(spawnError as Error).message}`);
      }
      if (hasExited(child)) {
        await killTree(child);
        this.child = null;
        const how = child.signalCode ? `signal ${child.signalCode}` : `code ${child.exitCode}`;
        throw new Error(`${l.label} exited with ${how} while starting. Log tail (${l.logFile}):\n${logTail(l.logFile)}`);
      }
      if (await l.ready()) return;
      if (Date.now() > end) {
        await killTree(child);
        this.child = null;
        throw new Error(`${l.label} did not answer within ${l.startTimeoutMs} ms; killed. Log tail (${l.logFile}):\n${logTail(l.logFile)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Orderly shutdown; resolves once every process of the server has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    try {
      await stopTree(child, this.launch.stopSignal, this.launch.stopTimeoutMs, this.launch.label);
    } finally {
      this.child = null;
    }
  }

  /** A crash: SIGKILL of the server and all its processes, no shutdown work at all. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    try {
      await killTree(child);
    } finally {
      this.child = null;
    }
  }
}

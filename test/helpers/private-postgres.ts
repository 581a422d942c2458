/**
 * A private PostgreSQL cluster for one test: initdb in a temp dir, a free port, trust auth from
 * anywhere (network-namespace hosts connect too), and the faults a scenario needs (stop, crash,
 * restart, terminated backends). Never the shared server on 5432.
 *
 * Crash-safe against kill(), not against a machine crash: fsync is off, synchronous commit is on.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { removeLeftoversSync } from './leftovers.js';
import {
  AVAILABLE,
  cleanEnv,
  freePort,
  isRoot,
  logTail,
  makeTempDir,
  removeTempDir,
  systemUser,
  track,
  unavailable,
  untrack,
  type Availability,
  type RunAs,
} from './processes.js';
import { ServerProcess } from './server-process.js';

const run = promisify(execFile);

export interface PrivatePostgresOptions {
  /** The address it listens on and that `url` names (default 127.0.0.1), e.g. a netns bridge address. */
  host?: string;
  /** Default: a port that is free on `host`. */
  port?: number;
  /** Server settings (`-c name=value`) over the defaults (fsync off, 16 MB shared buffers, …). */
  settings?: Record<string, string | number | boolean>;
  /** TZ of initdb and the server, so the cluster's `timezone`. Default UTC, like the shared server. */
  timeZone?: string;
  /** Where initdb, postgres live. Default: the newest /usr/lib/postgresql/N/bin, else PATH. */
  binDir?: string;
  /** Bound on each start (default 60 s) and each orderly stop (default 30 s). */
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

/** A client backend, as pg_stat_activity shows it. */
export interface PgBackend {
  pid: number;
  applicationName: string;
  user: string | null;
  database: string | null;
  /** The client's address, e.g. "127.0.0.1"; null for a unix-socket client. */
  clientAddr: string | null;
  state: string | null;
  query: string | null;
}

/** Which backends: an application_name, fields that must all match, or a predicate. */
export type PgBackendFilter =
  | string
  | Partial<Pick<PgBackend, 'applicationName' | 'user' | 'database' | 'clientAddr'>>
  | ((b: PgBackend) => boolean);

export interface PrivatePostgres {
  /** postgres://postgres@HOST:PORT/test */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The temp dir (owned by the postgres user when running as root); holds data/, the socket and server.log. */
  readonly dir: string;
  readonly dataDir: string;
  /** The unix socket directory: admin calls use it, so they work while TCP is cut. */
  readonly socketDir: string;
  readonly logFile: string;
  /** The postmaster's pid while it runs. */
  readonly pid: number | null;
  readonly running: boolean;
  /** Starts it again on the same data dir and port (after stop or kill). */
  start(): Promise<void>;
  /** Fast shutdown (SIGINT): open transactions roll back, clients are disconnected. */
  stop(): Promise<void>;
  /** A crash: SIGKILL of the postmaster and its backends; the next start does crash recovery. */
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** Runs SQL as postgres on `database` (default test) over the unix socket. */
  query<R extends pg.QueryResultRow = any>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  /** Client backends other than the helper's own, optionally filtered. */
  backends(filter?: PgBackendFilter): Promise<PgBackend[]>;
  /** pg_terminate_backend of the matching client backends; resolves once they have exited. */
  terminateBackends(filter?: PgBackendFilter): Promise<PgBackend[]>;
  logTail(lines?: number): string;
  /** Stops it (killing it if the stop fails) and removes the temp dir. Safe to call twice. */
  destroy(): Promise<void>;
}

/** The newest PostgreSQL bin dir with initdb and postgres, or null. */
export function findPostgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  const dirs = [...versions.map((v) => path.join(root, v, 'bin')), ...(process.env.PATH ?? '').split(':').filter(Boolean)];
  return dirs.find((d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'postgres'))) ?? null;
}

/** Who runs the server: the postgres user when we are root (PostgreSQL refuses root), else ourselves. */
function serverUser(): RunAs | null | Error {
  if (!isRoot()) return null;
  return systemUser('postgres') ?? new Error('running as root and there is no `postgres` system user to run PostgreSQL as');
}

export function postgresAvailable(): Availability {
  if (process.platform !== 'linux') return unavailable(`private servers need Linux (this is ${process.platform})`);
  if (!findPostgresBinDir()) return unavailable('no PostgreSQL server binaries (initdb, postgres) under /usr/lib/postgresql/*/bin or on PATH (Debian: apt-get install postgresql)');
  const user = serverUser();
  if (user instanceof Error) return unavailable(user.message);
  return AVAILABLE;
}

// fsync off loses data only when the machine crashes, never when the server is killed: commits
// still reach the kernel (synchronous_commit stays on), so a kill() loses no committed row.
const DEFAULT_SETTINGS: Record<string, string | number | boolean> = {
  fsync: 'off',
  full_page_writes: 'off',
  shared_buffers: '16MB',
  max_connections: 100,
  // POSIX segments would live in /dev/shm and outlive a SIGKILLed server; mmap files go with the dir.
  dynamic_shared_memory_type: 'mmap',
};

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** "key id" from line 7 of postmaster.pid: the SysV segment that a crash leaves behind. */
function readShm(dataDir: string): { key: number; id: number } | null {
  try {
    const line = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[6] ?? '';
    const [key, id] = line.trim().split(/\s+/).map(Number);
    return key !== undefined && id !== undefined && Number.isInteger(key) && Number.isInteger(id) && key > 0 ? { key, id } : null;
  } catch {
    return null;
  }
}

function matches(b: PgBackend, filter: PgBackendFilter | undefined): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'string') return b.applicationName === filter;
  if (typeof filter === 'function') return filter(b);
  return Object.entries(filter).every(([k, v]) => b[k as keyof PgBackend] === v);
}

export async function startPrivatePostgres(opts: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const avail = postgresAvailable();
  if (!avail.ok) throw new Error(`cannot start a private PostgreSQL: ${avail.reason}`);
  const binDir = opts.binDir ?? findPostgresBinDir()!;
  const runAs = serverUser() as RunAs | null;
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  const env = cleanEnv({ TZ: opts.timeZone ?? 'UTC', LC_ALL: 'C' });
  const dir = makeTempDir('pg', runAs);
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  if (path.join(dir, `.s.PGSQL.${port}`).length > 107) {
    removeTempDir(dir);
    throw new Error(`the temp dir ${dir} is too long for a unix socket path; set TMPDIR to a shorter directory`);
  }

  try {
    await run(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], {
      cwd: dir,
      env,
      timeout: 60_000,
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    // Trust from anywhere: network-namespace hosts connect from their own subnet addresses.
    appendFileSync(path.join(dataDir, 'pg_hba.conf'), '\nhost all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n');
  } catch (err) {
    removeTempDir(dir);
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`initdb failed for a private PostgreSQL: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }

  const settings = { ...DEFAULT_SETTINGS, ...opts.settings, listen_addresses: host, port, unix_socket_directories: dir };
  const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${String(v)}`])];

  const client = (database: string) =>
    new pg.Client({ host: dir, port, user: 'postgres', database, connectionTimeoutMillis: 5_000, application_name: 'bgtasks-test-admin' });

  async function query<R extends pg.QueryResultRow = any>(sql: string, params: unknown[] = [], database = 'test'): Promise<R[]> {
    const c = client(database);
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.query<R>(sql, params)).rows;
    } finally {
      await c.end().catch(() => {});
    }
  }

  const server = new ServerProcess({
    label: `private PostgreSQL on ${host}:${port}`,
    command: path.join(binDir, 'postgres'),
    args,
    runAs,
    env,
    logFile,
    stopSignal: 'SIGINT',
    startTimeoutMs: opts.startTimeoutMs ?? 60_000,
    stopTimeoutMs: opts.stopTimeoutMs ?? 30_000,
    ready: async () => {
      try {
        await query('SELECT 1', [], 'postgres');
        return true;
      } catch {
        return false;
      }
    },
  });

  let shm: { kind: 'shm'; key: number; id: number } | null = null;
  const dropShm = () => {
    // After a crash nothing is attached any more; PostgreSQL would reuse the key, we just remove it.
    if (shm) removeLeftoversSync([shm], 0);
    if (shm) untrack(shm);
    shm = null;
  };
  const start = async () => {
    dropShm();
    await server.start();
    const found = readShm(dataDir);
    if (found) {
      shm = { kind: 'shm', ...found };
      track(shm);
    }
  };
  const stop = async () => {
    try {
      await server.stop();
    } finally {
      // An orderly shutdown removes the segment itself; after a forced kill, dropShm removes it.
      if (shm) dropShm();
    }
  };

  let destroyed = false;
  let terminateWaits: boolean | null = null;
  const self: PrivatePostgres = {
    url: `postgres://postgres@${urlHost(host)}:${port}/test`,
    host,
    port,
    dir,
    dataDir,
    socketDir: dir,
    logFile,
    get pid() {
      return server.pid;
    },
    get running() {
      return server.running;
    },
    start,
    stop,
    async kill() {
      await server.kill();
    },
    async restart() {
      await stop();
      await start();
    },
    query,
    async backends(filter) {
      const rows = await query<{ pid: number; application_name: string; usename: string | null; datname: string | null; addr: string | null; state: string | null; query: string | null }>(
        `SELECT pid, application_name, usename, datname, host(client_addr) AS addr, state, query
           FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
        [],
        'postgres',
      );
      return rows
        .map((r) => ({ pid: r.pid, applicationName: r.application_name, user: r.usename, database: r.datname, clientAddr: r.addr, state: r.state, query: r.query }))
        .filter((b) => matches(b, filter));
    },
    async terminateBackends(filter) {
      const victims = await self.backends(filter);
      if (victims.length === 0) return victims;
      const pids = victims.map((b) => b.pid);
      // PostgreSQL 14+: the second argument makes pg_terminate_backend wait for the exit.
      terminateWaits ??= (await query<{ v: number }>(`SELECT current_setting('server_version_num')::int AS v`, [], 'postgres'))[0]!.v >= 140000;
      const call = terminateWaits ? 'pg_terminate_backend(p, 10000)' : 'pg_terminate_backend(p)';
      await query(`SELECT ${call} FROM unnest($1::int[]) AS p`, [pids], 'postgres');
      const end = Date.now() + 10_000;
      while ((await self.backends((b) => pids.includes(b.pid))).length > 0) {
        if (Date.now() > end) throw new Error(`backends ${pids.join(', ')} still there 10 s after pg_terminate_backend`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return victims;
    },
    logTail: (lines) => logTail(logFile, lines),
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      try {
        await stop();
      } catch {
        await server.kill();
        dropShm();
      } finally {
        removeTempDir(dir);
      }
    },
  };

  try {
    await start();
    if ((await query('SELECT 1 FROM pg_database WHERE datname = $1', ['test'], 'postgres')).length === 0) {
      await query('CREATE DATABASE test', [], 'postgres');
    }
  } catch (err) {
    await self.destroy().catch(() => {});
    throw err;
  }
  return self;
}

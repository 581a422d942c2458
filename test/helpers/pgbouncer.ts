/**
 * A private PgBouncer (Debian's `pgbouncer` binary) in front of a PostgreSQL server, for
 * scenarios where bgtasks runs behind a pooler: config in a temp dir, a free port, trust auth,
 * transaction pooling by default. Runs as the postgres user when we are root (PgBouncer refuses
 * root).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import {
  AVAILABLE,
  cleanEnv,
  freePort,
  isRoot,
  logTail,
  makeTempDir,
  removeTempDir,
  systemUser,
  unavailable,
  type Availability,
  type RunAs,
} from './processes.js';
import { ServerProcess } from './server-process.js';

export interface PgbouncerOptions {
  /** The PostgreSQL server to pool (default host 127.0.0.1). */
  upstreamHost?: string;
  upstreamPort: number;
  /** Default 'transaction', the mode that breaks session state (advisory locks, LISTEN, SET). */
  poolMode?: 'session' | 'transaction' | 'statement';
  /** The address it listens on and that `url` names (default 127.0.0.1). */
  host?: string;
  port?: number;
  /** The database `url` names (default test); every database name is passed through upstream. */
  database?: string;
  /** Users allowed in (trust auth still needs them listed). Default: postgres. */
  users?: string[];
  /** More [pgbouncer] settings over the defaults (default_pool_size 10, server_login_retry 1, …). */
  settings?: Record<string, string | number>;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

export interface Pgbouncer {
  /** postgres://postgres@HOST:PORT/test, through the pooler. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly logFile: string;
  readonly pid: number | null;
  readonly running: boolean;
  start(): Promise<void>;
  /** Immediate shutdown: every client and server connection is closed. */
  stop(): Promise<void>;
  /** A crash: SIGKILL. */
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** Runs an admin console command (SHOW POOLS, SHOW CLIENTS, PAUSE, …) and returns its rows. */
  admin(command: string): Promise<Record<string, unknown>[]>;
  logTail(lines?: number): string;
  /** Stops it and removes the temp dir. Safe to call twice. */
  destroy(): Promise<void>;
}

export function findPgbouncer(): string | null {
  const dirs = ['/usr/sbin', ...(process.env.PATH ?? '').split(':').filter(Boolean)];
  return dirs.map((d) => path.join(d, 'pgbouncer')).find((f) => existsSync(f)) ?? null;
}

function pgbouncerUser(): RunAs | null | Error {
  if (!isRoot()) return null;
  return systemUser('postgres') ?? new Error('running as root and there is no `postgres` system user to run PgBouncer as');
}

export function pgbouncerAvailable(): Availability {
  if (process.platform !== 'linux') return unavailable(`pgbouncer helpers need Linux (this is ${process.platform})`);
  if (!findPgbouncer()) return unavailable('no pgbouncer binary (Debian: apt-get install pgbouncer; .ci/run installs it)');
  const user = pgbouncerUser();
  if (user instanceof Error) return unavailable(user.message);
  return AVAILABLE;
}

/**
 * The immediate-shutdown signal: SIGTERM until 1.22; from 1.23 SIGTERM waits for every client to
 * leave and SIGQUIT is the immediate one.
 */
function immediateShutdownSignal(bin: string): NodeJS.Signals {
  const m = /PgBouncer (\d+)\.(\d+)/.exec(execFileSync(bin, ['--version'], { encoding: 'utf8' }));
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [1, 23];
  return major > 1 || minor >= 23 ? 'SIGQUIT' : 'SIGTERM';
}

export async function startPgbouncer(opts: PgbouncerOptions): Promise<Pgbouncer> {
  const avail = pgbouncerAvailable();
  if (!avail.ok) throw new Error(`cannot start pgbouncer: ${avail.reason}`);
  const bin = findPgbouncer()!;
  const runAs = pgbouncerUser() as RunAs | null;
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  const users = opts.users ?? ['postgres'];
  const dir = makeTempDir('pgbouncer', runAs);
  const logFile = path.join(dir, 'pgbouncer.log');
  const ini = path.join(dir, 'pgbouncer.ini');
  const settings: Record<string, string | number> = {
    pool_mode: opts.poolMode ?? 'transaction',
    default_pool_size: 10,
    max_client_conn: 500,
    // Retry a failed server login after 1 s (default 15), so a restarted server is found quickly.
    server_login_retry: 1,
    server_connect_timeout: 5,
    ignore_startup_parameters: 'extra_float_digits',
    ...opts.settings,
    listen_addr: host,
    listen_port: port,
    unix_socket_dir: dir,
    auth_type: 'trust',
    auth_file: path.join(dir, 'userlist.txt'),
    admin_users: users[0]!,
    // Empty: log to stderr (our log file), no pid file.
    logfile: '',
    pidfile: '',
  };
  writeFileSync(path.join(dir, 'userlist.txt'), users.map((u) => `"${u}" ""\n`).join(''));
  writeFileSync(
    ini,
    `[databases]\n* = host=${opts.upstreamHost ?? '127.0.0.1'} port=${opts.upstreamPort}\n\n[pgbouncer]\n` +
      Object.entries(settings)
        .map(([k, v]) => `${k} = ${v}\n`)
        .join(''),
  );

  async function admin(command: string): Promise<Record<string, unknown>[]> {
    const c = new pg.Client({ host: dir, port, user: users[0], database: 'pgbouncer', connectionTimeoutMillis: 5_000 });
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.query(command)).rows as Record<string, unknown>[];
    } finally {
      await c.end().catch(() => {});
    }
  }

  const server = new ServerProcess({
    label: `pgbouncer on ${host}:${port}`,
    command: bin,
    args: [ini],
    runAs,
    env: cleanEnv(),
    logFile,
    stopSignal: immediateShutdownSignal(bin),
    startTimeoutMs: opts.startTimeoutMs ?? 30_000,
    stopTimeoutMs: opts.stopTimeoutMs ?? 15_000,
    // The admin console answers without the upstream, so pgbouncer can start while it is down.
    ready: async () => {
      try {
        await admin('SHOW VERSION');
        return true;
      } catch {
        return false;
      }
    },
  });

  let destroyed = false;
  const self: Pgbouncer = {
    url: `postgres://${users[0]}@${host.includes(':') ? `[${host}]` : host}:${port}/${opts.database ?? 'test'}`,
    host,
    port,
    dir,
    logFile,
    get pid() {
      return server.pid;
    },
    get running() {
      return server.running;
    },
    start: () => server.start(),
    stop: () => server.stop(),
    kill: () => server.kill(),
    async restart() {
      await server.stop();
      await server.start();
    },
    admin,
    logTail: (lines) => logTail(logFile, lines),
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      try {
        await server.stop();
      } catch {
        await server.kill();
      } finally {
        removeTempDir(dir);
      }
    },
  };
  try {
    await server.start();
  } catch (err) {
    await self.destroy().catch(() => {});
    throw err;
  }
  return self;
}

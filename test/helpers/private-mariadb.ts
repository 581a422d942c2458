/**
 * A private MariaDB server for one test: mariadb-install-db in a temp dir, a free port, root with
 * an empty password (from anywhere, so network-namespace hosts can connect), small InnoDB
 * settings, and the faults a scenario needs (stop, crash, restart, killed connections). Never the
 * shared server on 3306.
 *
 * Crash-safe against kill(), not against a machine crash: commits reach the kernel at once and
 * are fsynced once a second.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import {
  AVAILABLE,
  cleanEnv,
  freePort,
  isRoot,
  logTail,
  makeTempDir,
  removeTempDir,
  unavailable,
  type Availability,
} from './processes.js';
import { ServerProcess } from './server-process.js';

const run = promisify(execFile);

export interface PrivateMariadbOptions {
  /** The address it listens on and that `url` names (default 127.0.0.1), e.g. a netns bridge address. */
  host?: string;
  /** Default: a port that is free on `host`. */
  port?: number;
  /** More mariadbd options (e.g. "--wait-timeout=5"), after the defaults. */
  args?: string[];
  /** TZ of the server, so its SYSTEM time zone. Default UTC, like the shared server. */
  timeZone?: string;
  /** Bound on each start (default 60 s) and each orderly stop (default 30 s). */
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

/** A client connection, as information_schema.PROCESSLIST shows it. */
export interface MariadbConnection {
  id: number;
  user: string;
  /** The client's address without the port, e.g. "127.0.0.1"; "localhost" for a socket client. */
  clientAddr: string;
  db: string | null;
  command: string;
  state: string | null;
  info: string | null;
}

/** Which connections: fields that must all match, or a predicate. */
export type MariadbConnectionFilter = Partial<Pick<MariadbConnection, 'user' | 'clientAddr' | 'db'>> | ((c: MariadbConnection) => boolean);

export interface PrivateMariadb {
  /** mysql://root@HOST:PORT/test */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The temp dir: data/, the socket and server.log. */
  readonly dir: string;
  readonly dataDir: string;
  /** The unix socket: admin calls use it, so they work while TCP is cut. */
  readonly socket: string;
  readonly logFile: string;
  readonly pid: number | null;
  readonly running: boolean;
  /** Starts it again on the same data dir and port (after stop or kill). */
  start(): Promise<void>;
  /** Orderly shutdown (SIGTERM): open transactions roll back, clients are disconnected. */
  stop(): Promise<void>;
  /** A crash: SIGKILL; the next start does InnoDB crash recovery. */
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** Runs SQL as root on `database` (default test) over the unix socket. */
  query<R = any>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  /** Client connections other than the helper's own, optionally filtered. */
  connections(filter?: MariadbConnectionFilter): Promise<MariadbConnection[]>;
  /** KILL CONNECTION of the matching client connections; resolves once they are gone. */
  killConnections(filter?: MariadbConnectionFilter): Promise<MariadbConnection[]>;
  logTail(lines?: number): string;
  /** Stops it (killing it if the stop fails) and removes the temp dir. Safe to call twice. */
  destroy(): Promise<void>;
}

interface MariadbBins {
  server: string;
  install: string;
}

function findOnPath(names: string[], extra: string[]): string | null {
  const dirs = [...extra, ...(process.env.PATH ?? '').split(':').filter(Boolean)];
  for (const name of names) for (const d of dirs) if (existsSync(path.join(d, name))) return path.join(d, name);
  return null;
}

export function findMariadbBins(): MariadbBins | null {
  const server = findOnPath(['mariadbd', 'mysqld'], ['/usr/sbin']);
  const install = findOnPath(['mariadb-install-db', 'mysql_install_db'], ['/usr/bin']);
  return server && install ? { server, install } : null;
}

export function mariadbAvailable(): Availability {
  if (process.platform !== 'linux') return unavailable(`private servers need Linux (this is ${process.platform})`);
  if (!findMariadbBins()) return unavailable('no MariaDB server binaries (mariadbd, mariadb-install-db) in /usr/sbin, /usr/bin or on PATH (Debian: apt-get install mariadb-server)');
  return AVAILABLE;
}

// Used by both mariadb-install-db and mariadbd, so the bootstrap writes files the server accepts.
const COMMON_ARGS = [
  '--skip-name-resolve',
  '--innodb-buffer-pool-size=16M',
  '--innodb-log-file-size=16M',
  // 2: each commit is written to the kernel, fsynced once a second: a kill() loses no commit.
  '--innodb-flush-log-at-trx-commit=2',
  '--innodb-doublewrite=0',
  '--skip-log-bin',
  '--performance-schema=0',
  // The shared server's (Debian's) character set: --no-defaults would otherwise mean latin1.
  '--character-set-server=utf8mb4',
  '--collation-server=utf8mb4_general_ci',
];

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function matches(c: MariadbConnection, filter: MariadbConnectionFilter | undefined): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'function') return filter(c);
  return Object.entries(filter).every(([k, v]) => c[k as keyof MariadbConnection] === v);
}

export async function startPrivateMariadb(opts: PrivateMariadbOptions = {}): Promise<PrivateMariadb> {
  const avail = mariadbAvailable();
  if (!avail.ok) throw new Error(`cannot start a private MariaDB: ${avail.reason}`);
  const bins = findMariadbBins()!;
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  const env = cleanEnv({ TZ: opts.timeZone ?? 'UTC' });
  const dir = makeTempDir('mariadb');
  const dataDir = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  const logFile = path.join(dir, 'server.log');
  // mariadbd refuses root unless told to be root; as anyone else it runs as itself.
  const userArgs = isRoot() ? ['--user=root'] : [];

  try {
    await run(
      bins.install,
      ['--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...userArgs, ...COMMON_ARGS],
      { cwd: dir, env, timeout: 60_000 },
    );
  } catch (err) {
    removeTempDir(dir);
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`mariadb-install-db failed for a private MariaDB: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }

  async function query<R = any>(sql: string, params: unknown[] = [], database = 'test'): Promise<R[]> {
    const c = await mysql.createConnection({ socketPath: socket, user: 'root', database, connectTimeout: 5_000 });
    c.on('error', () => {});
    try {
      const [rows] = await c.query(sql, params);
      return rows as R[];
    } finally {
      await c.end().catch(() => c.destroy());
    }
  }

  const server = new ServerProcess({
    label: `private MariaDB on ${host}:${port}`,
    command: bins.server,
    args: [
      '--no-defaults',
      `--datadir=${dataDir}`,
      `--socket=${socket}`,
      `--port=${port}`,
      `--bind-address=${host}`,
      `--pid-file=${path.join(dir, 'mariadbd.pid')}`,
      ...userArgs,
      ...COMMON_ARGS,
      ...(opts.args ?? []),
    ],
    runAs: null,
    env,
    logFile,
    stopSignal: 'SIGTERM',
    startTimeoutMs: opts.startTimeoutMs ?? 60_000,
    stopTimeoutMs: opts.stopTimeoutMs ?? 30_000,
    ready: async () => {
      try {
        await query('SELECT 1', [], 'mysql');
        return true;
      } catch {
        return false;
      }
    },
  });

  let destroyed = false;
  const self: PrivateMariadb = {
    url: `mysql://root@${urlHost(host)}:${port}/test`,
    host,
    port,
    dir,
    dataDir,
    socket,
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
    query,
    async connections(filter) {
      const rows = await query<{ id: number; user: string; host: string; db: string | null; command: string; state: string | null; info: string | null }>(
        `SELECT ID AS id, USER AS user, HOST AS host, DB AS db, COMMAND AS command, STATE AS state, INFO AS info
           FROM information_schema.PROCESSLIST
          WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Daemon'
            AND USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')`,
        [],
        'mysql',
      );
      return rows
        .map((r) => ({ id: Number(r.id), user: r.user, clientAddr: r.host.replace(/:\d+$/, ''), db: r.db, command: r.command, state: r.state, info: r.info }))
        .filter((c) => matches(c, filter));
    },
    async killConnections(filter) {
      const victims = await self.connections(filter);
      for (const v of victims) {
        // ER_NO_SUCH_THREAD: it ended on its own meanwhile, which is what we wanted.
        await query(`KILL CONNECTION ${v.id}`, [], 'mysql').catch((err: { errno?: number }) => {
          if (err.errno !== 1094) throw err;
        });
      }
      const ids = victims.map((v) => v.id);
      const end = Date.now() + 10_000;
      while ((await self.connections((c) => ids.includes(c.id))).length > 0) {
        if (Date.now() > end) throw new Error(`connections ${ids.join(', ')} still there 10 s after KILL CONNECTION`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return victims;
    },
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
    // root@'%' lets network-namespace hosts in; the install made root only for local addresses.
    await query(`CREATE USER IF NOT EXISTS 'root'@'%'`, [], 'mysql');
    await query(`GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION`, [], 'mysql');
    await query('CREATE DATABASE IF NOT EXISTS test', [], 'mysql');
  } catch (err) {
    await self.destroy().catch(() => {});
    throw err;
  }
  return self;
}

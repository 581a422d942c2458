/**
 * A private database server for a soak (LONGTX-01), started from this machine's server binaries by
 * the test suite's helpers (test/helpers/private-servers.ts) in a temporary directory on a free
 * port, and removed afterwards; the helpers also remove it if the bench dies. A soak that holds a
 * transaction open for minutes must not do so on the shared servers: PostgreSQL's vacuum horizon
 * covers every table of the database and InnoDB's purge the whole server, so other people's
 * tables would bloat too, and their long transactions would spoil our clean run. The shared
 * PostgreSQL of this machine also runs with autovacuum off (CI settings), which a clean run must
 * not have.
 *
 * The settings are the servers' defaults where they matter here (autovacuum on, PostgreSQL's
 * shared_buffers at its default 128 MB), and the helpers' otherwise (fsync off on PostgreSQL,
 * commits flushed once a second on MariaDB): a comparison of a clean run with a held one on the
 * same server, not a production tuning. One exception: InnoDB's buffer pool is 1 GB, not its
 * default 128 MB. InnoDB reads its files past the operating system's cache (O_DIRECT), so what
 * leaves the pool is read from disk, and beside a held transaction the dedupe index (the one
 * index written at random places) keeps every task's entry: it outgrew a 128 MB pool within
 * minutes (LONGTX-01 at 128 MB over four minutes: 0.38 of the clean run with the full-width
 * index, 0.65 with migration 012's short one). 1 GB is what a small dedicated server gives it
 * (MariaDB advises most of the memory); docs/scaling.md says how to size it. And the redo log is
 * MariaDB's default 96 MB, not the test helpers' 16 MB (chosen there for a fast start): with
 * 16 MB, InnoDB must write its dirty pages back after every 16 MB of changes logged (at 96 MB
 * this load kept the log near its checkpoint limit within the first minute), and the soak would
 * measure that rather than the held transaction.
 */
import { mariadbAvailable, postgresAvailable, startPrivateMariadb, startPrivatePostgres } from '../../test/helpers/private-servers.js';
import type { DbName } from './databases.js';

export interface PrivateServer {
  url: string;
  /** What it is, for the report: the server's own version string and the settings given. */
  describe: string;
  destroy(): Promise<void>;
}

/** Why a private server of this kind cannot start here, or null when it can. */
export function privateServerUnavailable(db: DbName): string | null {
  if (db === 'sqlite') return 'SQLite has no server';
  const a = db === 'postgres' ? postgresAvailable() : mariadbAvailable();
  return a.ok ? null : a.reason;
}

// pg_stat_statements and MariaDB's performance schema say which statements took the time, in
// both phases alike (bench/lib/long-transaction.ts reads them).
const PG_SETTINGS = { shared_buffers: '128MB', autovacuum: 'on', shared_preload_libraries: 'pg_stat_statements' };
const MARIADB_ARGS = ['--innodb-buffer-pool-size=1G', '--innodb-log-file-size=96M', '--performance-schema=1'];

export async function startPrivateServer(db: 'mysql' | 'postgres'): Promise<PrivateServer> {
  if (db === 'postgres') {
    const s = await startPrivatePostgres({ settings: PG_SETTINGS });
    await s.query('CREATE EXTENSION pg_stat_statements');
    const [v] = await s.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return {
      url: s.url,
      describe: `a private PostgreSQL ${String(v?.v)} (shared_buffers 128MB, autovacuum on with its default settings, fsync off, pg_stat_statements)`,
      destroy: () => s.destroy(),
    };
  }
  const s = await startPrivateMariadb({ args: MARIADB_ARGS });
  const [v] = await s.query<{ v: string }>('SELECT version() AS v');
  return {
    url: s.url,
    describe: `a private MariaDB ${String(v?.v)} (innodb_buffer_pool_size 1G, innodb_log_file_size 96M, innodb_flush_log_at_trx_commit 2, performance_schema on)`,
    destroy: () => s.destroy(),
  };
}

/**
 * Private database servers for fault-scenario tests: each test that stops, crashes or restarts a
 * server, or kills its connections, starts its own in a temp dir on a free port, and never
 * touches the shared servers on 3306 and 5432.
 *
 *   before(async function () {
 *     this.timeout(90_000);
 *     skipUnless(this, postgresAvailable(), 'private PostgreSQL scenarios');
 *     pgServer = await startPrivatePostgres();
 *   });
 *   after(() => pgServer?.destroy());
 *
 * What each needs from the machine, and how a test skips without it: docs/testing-infrastructure.md.
 */
export { findPostgresBinDir, postgresAvailable, startPrivatePostgres } from './private-postgres.js';
export type { PgBackend, PgBackendFilter, PrivatePostgres, PrivatePostgresOptions } from './private-postgres.js';
export { findMariadbBins, mariadbAvailable, startPrivateMariadb } from './private-mariadb.js';
export type { MariadbConnection, MariadbConnectionFilter, PrivateMariadb, PrivateMariadbOptions } from './private-mariadb.js';
export { leftovers, skipUnless, type Availability } from './processes.js';

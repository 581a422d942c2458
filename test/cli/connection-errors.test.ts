/**
 * A database the CLI cannot open is reported as what happened, with the masked URL and the fix,
 * by the worker and by every command, against real servers: a wrong password for a real user (a
 * throwaway user created here and dropped after; on PostgreSQL a private cluster, since the
 * shared server trusts every local connection), a database or role that does not exist, and a
 * port where nothing listens. They were all "Cannot reach the database".
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { serverUrl } from '../helpers/databases.js';
import { makeProject, runCli, type Project, type RunResult } from '../helpers/project.js';
import { RECORD_TASKS } from '../helpers/record-project.js';
import { freePort } from '../helpers/processes.js';
import { postgresAvailable, skipUnless, startPrivatePostgres, type PrivatePostgres } from '../helpers/private-servers.js';

const WHERE = 'the database URL (--database, BGTASKS_DATABASE_URL or the config file)';

/** Every command that opens the database, with arguments that get it that far. */
const COMMANDS: string[][] = [
  ['process-tasks', '--batch', '--no-startup-delay'],
  ['migrate'],
  ['migrate', '--status'],
  ['list'],
  ['show', '1'],
  ['stats'],
  ['schedules'],
  ['health', '--max-wait', '60'],
  ['enqueue', 'record', '--args', '[1]'],
  ['retry', '1'],
  ['delete', '1'],
  ['cancel', '1'],
  ['prune-results', '--dry-run'],
];

function withCredentials(url: string, user: string, password: string, database?: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  if (database !== undefined) u.pathname = `/${database}`;
  return u.href;
}

/** Exit 1, exactly `line` on stderr, and the password nowhere in the output. */
function expectFailure(r: RunResult, line: string, secret?: string): void {
  expect({ code: r.code, stderr: r.stderr }).to.deep.equal({ code: 1, stderr: `${line}\n` });
  if (secret) expect(r.stdout + r.stderr).not.to.include(secret);
}

describe('connection failures say what happened, spawned', function () {
  this.timeout(120_000);
  let project: Project;
  before(() => {
    project = makeProject({ 'tasks.ts': RECORD_TASKS });
  });
  after(() => project?.remove());
  const cli = (args: string[], url: string) => runCli([...args, '--database', url], project.dir);

  describe('[mysql]', () => {
    const url = serverUrl('mysql');
    let admin: Knex;
    const user = `bgt_${randomBytes(4).toString('hex')}`;
    const password = `right-${randomBytes(4).toString('hex')}`;
    before(async function () {
      if (!url) {
        process.stdout.write('NOTICE: BGTASKS_TEST_MYSQL_URL is not set: the MariaDB connection-error tests are skipped (not counted as passed).\n');
        this.skip();
      }
      admin = knexFactory({ client: 'mysql2', connection: url! });
      await admin.raw(`CREATE USER ??@'%' IDENTIFIED BY ?`, [user, password]);
      await admin.raw(`GRANT ALL ON test.* TO ??@'%'`, [user]);
    });
    after(async () => {
      if (!admin) return;
      await admin.raw(`DROP USER IF EXISTS ??@'%'`, [user]);
      await admin.destroy();
    });

    it('a wrong password for a real user: "authentication failed for user U", the masked URL and the fix, from the worker and every command', async () => {
      const bad = withCredentials(url!, user, 'wrong-secret');
      const shown = withCredentials(url!, user, '***').replace('%2A%2A%2A', '***');
      const host = new URL(url!).hostname;
      const results = await Promise.all(COMMANDS.map((args) => cli(args, bad)));
      results.forEach((r, i) => {
        expect(r.code, `${COMMANDS[i]!.join(' ')}: ${r.stderr}`).to.equal(1);
        expectFailure(
          r,
          `bgtasks: Cannot connect to the database ${shown}: authentication failed for user "${user}" (MySQL/MariaDB: Access denied for user '${user}'@'${host}' (using password: YES)) — check the user name and password in ${WHERE}`,
          'wrong-secret',
        );
      });
      // The right password gets through (not migrated: exit 3), so the message was about the password.
      expect((await cli(['migrate', '--status'], withCredentials(url!, user, password))).code).to.equal(3);
    });

    it('a database that does not exist: "database D does not exist" and how to create it', async () => {
      const db = `bgt_missing_${randomBytes(3).toString('hex')}`;
      const missing = withCredentials(url!, new URL(url!).username, '', db);
      const [list, worker] = await Promise.all([cli(['list'], missing), cli(COMMANDS[0]!, missing)]);
      const line = `bgtasks: Cannot connect to the database ${missing}: database "${db}" does not exist (MySQL/MariaDB: Unknown database '${db}') — create it (CREATE DATABASE ${db}), or fix the database name in ${WHERE}`;
      expectFailure(list, line);
      expectFailure(worker, line);
    });

    it('a database the user may not use (MariaDB does not say whether it exists): names both and the grant', async () => {
      const db = `bgt_missing_${randomBytes(3).toString('hex')}`;
      const r = await cli(['stats'], withCredentials(url!, user, password, db));
      expectFailure(
        r,
        `bgtasks: Cannot connect to the database ${withCredentials(url!, user, '***', db).replace('%2A%2A%2A', '***')}: user "${user}" may not use database "${db}", or it does not exist (MySQL/MariaDB: Access denied for user '${user}'@'%' to database '${db}') — create it and grant the user access (GRANT ALL ON ${db}.* TO …), or fix the database name in ${WHERE}`,
        password,
      );
    });

    it('a port where nothing listens: "connection to host:port refused"', async () => {
      const port = await freePort();
      const r = await cli(['list'], `mysql://root@127.0.0.1:${port}/test`);
      expectFailure(r, `bgtasks: Cannot connect to the database mysql://root@127.0.0.1:${port}/test: connection to 127.0.0.1:${port} refused — is the server running, and listening on that address and port?`);
    });
  });

  describe('[postgres]', () => {
    const url = serverUrl('postgres');
    before(function () {
      if (!url) {
        process.stdout.write('NOTICE: BGTASKS_TEST_PG_URL is not set: the PostgreSQL connection-error tests on the shared server are skipped (not counted as passed).\n');
        this.skip();
      }
    });

    it('a database that does not exist: "database D does not exist" and how to create it, from the worker and every command', async () => {
      const db = `bgt_missing_${randomBytes(3).toString('hex')}`;
      const missing = withCredentials(url!, new URL(url!).username, '', db);
      const results = await Promise.all(COMMANDS.map((args) => cli(args, missing)));
      results.forEach((r) =>
        expectFailure(
          r,
          `bgtasks: Cannot connect to the database ${missing}: database "${db}" does not exist (PostgreSQL: database "${db}" does not exist) — create it (CREATE DATABASE ${db}), or fix the database name in ${WHERE}`,
        ),
      );
    });

    it('a role that does not exist: "the server refused user U"', async () => {
      const role = `bgt_norole_${randomBytes(3).toString('hex')}`;
      const r = await cli(['list'], withCredentials(url!, role, 'pw-secret'));
      expectFailure(
        r,
        `bgtasks: Cannot connect to the database ${withCredentials(url!, role, '***').replace('%2A%2A%2A', '***')}: the server refused user "${role}" (PostgreSQL: role "${role}" does not exist) — check the user name in ${WHERE}, and that the server lets it connect from this host (pg_hba.conf)`,
        'pw-secret',
      );
    });

    it('a port where nothing listens: "connection to host:port refused"', async () => {
      const port = await freePort();
      const r = await cli(['process-tasks', '--batch', '--no-startup-delay'], `postgres://postgres@127.0.0.1:${port}/test`);
      expectFailure(r, `bgtasks: Cannot connect to the database postgres://postgres@127.0.0.1:${port}/test: connection to 127.0.0.1:${port} refused — is the server running, and listening on that address and port?`);
    });
  });

  describe('[postgres, a private cluster with password authentication]', () => {
    let server: PrivatePostgres | null = null;
    const user = `bgt_${randomBytes(4).toString('hex')}`;
    const password = `right-${randomBytes(4).toString('hex')}`;
    before(async function () {
      skipUnless(this, postgresAvailable(), 'the PostgreSQL wrong-password test (it needs a private cluster that checks passwords)');
      this.timeout(120_000);
      server = await startPrivatePostgres();
      await server.query(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
      // pg_hba.conf takes the first matching line: this user must give its password over TCP.
      const hba = path.join(server.dataDir, 'pg_hba.conf');
      writeFileSync(hba, `host all ${user} 0.0.0.0/0 scram-sha-256\n${readFileSync(hba, 'utf8')}`);
      await server.query('SELECT pg_reload_conf()');
    });
    after(async () => {
      await server?.destroy();
    });

    it('a wrong password for a real user: "authentication failed for user U", the masked URL and the fix, from the worker and every command', async () => {
      const bad = withCredentials(server!.url, user, 'wrong-secret');
      const shown = withCredentials(server!.url, user, '***').replace('%2A%2A%2A', '***');
      const results = await Promise.all(COMMANDS.map((args) => cli(args, bad)));
      results.forEach((r) =>
        expectFailure(
          r,
          `bgtasks: Cannot connect to the database ${shown}: authentication failed for user "${user}" (PostgreSQL: password authentication failed for user "${user}") — check the user name and password in ${WHERE}`,
          'wrong-secret',
        ),
      );
      expect((await cli(['migrate', '--status'], withCredentials(server!.url, user, password))).code).to.equal(3);
    });
  });
});

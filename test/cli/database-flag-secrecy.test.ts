/**
 * A password in `--database` does not stay readable by other local users: the `--dev`
 * supervisor passes the URL to its worker child through the environment (not its arguments, where
 * it was copied before), and every bgtasks process rewrites its own command line with the password
 * masked as soon as it runs. The child still treats the URL as the flag (above
 * BGTASKS_DATABASE_URL). On PostgreSQL (the shared server trusts local connections, so any
 * password opens it), MariaDB (a throwaway user with a password, dropped after) and SQLite.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { serverUrl, settingsFor, uniquePrefix, waitUntil } from '../helpers/databases.js';
import { killLeftovers, makeProject, runCli, startCli, type Project, type Spawned } from '../helpers/project.js';
import { RECORD_TASKS } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import { readResult } from '../../core/api/results.js';
import type { Store } from '../../core/store/store.js';

const SECRET = `pw-${randomBytes(6).toString('hex')}`;

function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}

interface Target {
  name: string;
  /** The URL with SECRET as its password (SQLite: a file, no password). */
  url(p: Project): string;
  setUp?(): Promise<void>;
  tearDown?(): Promise<void>;
}

function targets(): Target[] {
  const list: Target[] = [{ name: 'sqlite', url: (p) => `sqlite:${path.join(p.dir, 'flag.sqlite3')}` }];
  const pgUrl = serverUrl('postgres');
  if (pgUrl) {
    const u = new URL(pgUrl);
    u.password = SECRET;
    list.push({ name: 'postgres', url: () => u.href });
  }
  const myUrl = serverUrl('mysql');
  if (myUrl) {
    const user = `bgt_${randomBytes(4).toString('hex')}`;
    const u = new URL(myUrl);
    u.username = user;
    u.password = SECRET;
    let admin: Knex | null = null;
    list.push({
      name: 'mysql',
      url: () => u.href,
      async setUp() {
        admin = knexFactory({ client: 'mysql2', connection: myUrl });
        await admin.raw(`CREATE USER ??@'%' IDENTIFIED BY ?`, [user, SECRET]);
        await admin.raw(`GRANT ALL ON ??.* TO ??@'%'`, [new URL(myUrl).pathname.slice(1), user]);
      },
      async tearDown() {
        if (!admin) return;
        await admin.raw(`DROP USER IF EXISTS ??@'%'`, [user]);
        await admin.destroy();
      },
    });
  }
  return list;
}

for (const t of targets()) {
  describe(`a password in --database stays out of other users' sight, spawned [${t.name}]`, function () {
    this.timeout(90_000);
    let project: Project;
    let store: Store;
    let url: string;
    const prefix = uniquePrefix();
    const children: Spawned[] = [];
    // A different database in the environment: the flag must win over it, in the child too.
    const env = () => ({ BGTASKS_DATABASE_URL: `sqlite:${path.join(project.dir, 'from-env.sqlite3')}`, RUN_LOG: path.join(project.dir, 'runs.log') });
    const enqueueRecord = async (n: number) => {
      const args = JSON.stringify([n]);
      const now = Date.now();
      return (await store.insertTasks([plainTask({ name: 'record', args, hash: taskHash('record', args), runAt: now, enqueuedAt: now })]))[0]!;
    };

    before(async () => {
      await t.setUp?.();
      project = makeProject({ 'tasks.ts': RECORD_TASKS });
      url = t.url(project);
      const m = await runCli(['migrate', '--database', url, '--table-prefix', prefix], project.dir, env());
      expect(m.code, m.stderr).to.equal(0);
      expect(m.stdout + m.stderr).not.to.include(SECRET);
      store = await storeFor(await settingsFor(url, prefix, project.dir));
    });
    afterEach(() => killLeftovers(children));
    after(async () => {
      if (store) await rollbackMigrations(store.conn, prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      await t.tearDown?.();
      project?.remove();
    });

    it('--dev: the worker child has no --database in its arguments, the supervisor shows it masked, and the child serves the flag\'s database', async () => {
      const dev = startCli(['process-tasks', '--dev', '--database', url, '--table-prefix', prefix, '--sleep', '0.05', '--no-startup-delay'], project.dir, env());
      children.push(dev);
      await waitUntil(() => /worker started/.test(dev.stdout()), 'the worker to start', 20_000);
      const workerPid = Number(/worker=[^:\s]+:(\d+):/.exec(dev.stdout())![1]);
      expect(workerPid).to.not.equal(dev.child.pid);

      const child = cmdline(workerPid);
      expect(child).to.match(/process-tasks/);
      expect(child).not.to.include('--database');
      expect(child).not.to.include(SECRET);
      const supervisor = cmdline(dev.child.pid!);
      expect(supervisor).not.to.include(SECRET);
      expect(supervisor).to.include('--database');
      if (t.name !== 'sqlite') expect(supervisor).to.include(':***@');

      const id = await enqueueRecord(7);
      await waitUntil(async () => (await readResult(store, id)).status === 'SUCCESSFUL', 'the task to run in the flag\'s database', 20_000);
      dev.child.kill('SIGTERM');
      const r = await dev.exited;
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout + r.stderr).not.to.include(SECRET);
    });

    if (t.name !== 'sqlite') {
      it('a plain worker rewrites its own command line with the password masked', async () => {
        const w = startCli(['process-tasks', '--database', url, '--table-prefix', prefix, '--no-startup-delay'], project.dir, env());
        children.push(w);
        await waitUntil(() => /worker started/.test(w.stdout()), 'the worker to start', 20_000);
        const shown = cmdline(w.child.pid!);
        expect(shown).not.to.include(SECRET);
        expect(shown).to.include(`--database ${url.replace(SECRET, '***')}`);
        w.child.kill('SIGTERM');
        expect((await w.exited).code).to.equal(0);
      });
    }
  });
}

/**
 * Whole-process faults (issue 4), with the real CLI, on SQLite, MariaDB and PostgreSQL: many
 * workers, kill -9, SIGSTOP past the lease, a cut network (on SQLite: a file locked by another
 * process), and SIGTERM with a running task.
 */
import { expect } from 'chai';
import path from 'node:path';
import type { Knex } from 'knex';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { killLeftovers, makeProject, runCli, spawnNode, startCli, TSX_LOADER, type Project, type RunResult, type Spawned } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { TcpProxy, throughProxy } from '../helpers/tcp-proxy.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import type { Store } from '../../core/store/store.js';
import { getResult } from '../../core/api/results.js';
import { configure, resetConfiguration } from '../../core/config/settings.js';

const TASKS = `
import knexFactory from 'knex';
import { background } from 'bgtasks';

const url = process.env.EFFECTS_URL!;
function config() {
  if (url.startsWith('sqlite:')) {
    return { client: 'sqlite3', connection: { filename: url.slice('sqlite:'.length) }, useNullAsDefault: true,
      pool: { min: 1, max: 1, afterCreate: (c: any, done: any) => c.exec('PRAGMA busy_timeout = 15000', (e: any) => done(e, c)) } };
  }
  const u = new URL(url);
  const connection = { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1) };
  return { client: url.startsWith('postgres') ? 'pg' : 'mysql2', connection, pool: { min: 0, max: 4 } };
}
const db = knexFactory(config());

/** A side effect that must happen once: a duplicate run violates the unique key and fails loudly. */
export const effect = background({ name: 'effect' }, async function effect(n: number) {
  await db(process.env.EFFECTS_TABLE!).insert({ n, pid: process.pid });
  return n;
});

/** Work that holds the event loop (CPU-bound code in a task): heartbeats can only run between tasks. */
export const busy = background({ name: 'busy' }, async function busy(n: number, ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
  await db(process.env.EFFECTS_TABLE!).insert({ n, pid: process.pid });
  return n;
});

export const slow = background({ name: 'slow' }, async function slow(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
  return { pid: process.pid };
});
`;

const BULK = `
import { closeConnections } from 'bgtasks';
import { busy, effect, slow } from './tasks.js';
const [kind, a, b, c] = process.argv.slice(2);
if (kind === 'effects') {
  const from = Number(a), count = Number(b);
  await effect.bulk(Array.from({ length: count }, (_, i) => [from + i] as [number]));
} else if (kind === 'busy') {
  const from = Number(a), count = Number(b);
  await busy.bulk(Array.from({ length: count }, (_, i) => [from + i, Number(c)] as [number, number]));
} else {
  const ref = await slow(Number(a));
  process.stdout.write(ref.id + '\\n');
}
await closeConnections();
process.exit(0);
`;

for (const t of cliTargets()) {
  describe(`faults, spawned [${t.name}]`, function () {
    this.timeout(120_000);
    let project: Project;
    let store: Store;
    let env: Record<string, string>;
    let effects: string;
    const children: Spawned[] = [];

    const worker = (...args: string[]) => {
      const s = startCli(['process-tasks', '--no-startup-delay', '--sleep', '0.1', ...args], project.dir, env);
      children.push(s);
      return s;
    };
    const enqueue = async (...args: string[]) => {
      const r = await spawnNode(['--import', TSX_LOADER, 'bulk.ts', ...args], project.dir, env).exited;
      expect(r.code, r.stderr).to.equal(0);
      return r.stdout.trim();
    };
    const count = async (table: string): Promise<number> => {
      const [{ n }] = (await store.knex(table).count({ n: '*' })) as Array<{ n: unknown }>;
      return Number(n);
    };
    const noErrors = (r: RunResult | Spawned) => {
      const out = 'stdout' in r && typeof r.stdout === 'function' ? (r as Spawned).stdout() : (r as RunResult).stdout;
      const err = 'stderr' in r && typeof r.stderr === 'function' ? (r as Spawned).stderr() : (r as RunResult).stderr;
      expect(err, 'stderr').to.equal('');
      expect(out).not.to.match(/ ERROR /);
    };

    before(async () => {
      project = makeProject({ 'tasks.ts': TASKS, 'bulk.ts': BULK }, ['knex']);
      const url = t.url(project);
      effects = `${t.prefix}effects`;
      env = { ...t.env, EFFECTS_URL: url, EFFECTS_TABLE: effects };
      expect((await runCli(['migrate'], project.dir, env)).code).to.equal(0);
      const settings = await settingsFor(url, t.prefix, project.dir);
      store = await storeFor(settings);
      configure({ database: url, tablePrefix: t.prefix });
      await store.knex.schema.createTable(effects, (tb: Knex.CreateTableBuilder) => {
        tb.integer('n').notNullable().unique();
        tb.integer('pid').notNullable();
      });
    });
    beforeEach(async () => {
      await store.knex(store.tables.tasks).del();
      await store.knex(store.tables.completed).del();
      await store.knex(effects).del();
    });
    afterEach(async () => {
      await killLeftovers(children);
    });
    after(async () => {
      await store.knex.schema.dropTableIfExists(effects).catch(() => {});
      await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      resetConfiguration();
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('4 worker processes run 2,000 tasks exactly once, with no error logged', async () => {
      await enqueue('effects', '1', '2000');
      const ws = [1, 2, 3, 4].map(() => worker('--batch', '--concurrency', '4'));
      const results = await Promise.all(ws.map((w) => w.exited));
      for (const r of results) {
        expect(r.code, r.stderr + r.stdout.slice(-2000)).to.equal(0);
        noErrors(r);
      }
      expect(await count(effects)).to.equal(2000);
      expect(await count(store.tables.completed)).to.equal(2000);
      expect(await count(store.tables.tasks)).to.equal(0);
      const [{ n }] = (await store.knex(store.tables.completed).whereNot('attempts', 1).count({ n: '*' })) as Array<{ n: unknown }>;
      expect(Number(n)).to.equal(0);
    });

    it('workers whose tasks block the event loop keep their leases (lockTimeout 5 s): 30 tasks × 300 ms run once each, none lost', async () => {
      await enqueue('busy', '1', '30', '300');
      // Together about 9 s of blocked event loop, well past lockTimeout, spread over two workers
      // that each claim ahead (prefetch) and so hold leases on tasks that wait their turn.
      const ws = [1, 2].map(() => worker('--batch', '--concurrency', '4', '--lock-timeout', '5'));
      const results = await Promise.all(ws.map((w) => w.exited));
      for (const r of results) {
        expect(r.code, r.stderr + r.stdout.slice(-2000)).to.equal(0);
        noErrors(r);
        expect(r.stdout).not.to.match(/lease lost|WorkerLostError/);
      }
      expect(await count(effects)).to.equal(30);
      const rows = (await store.knex(store.tables.completed).select('attempts', 'errors', 'failed_at')) as Array<Record<string, unknown>>;
      expect(rows).to.have.length(30);
      for (const r of rows) {
        expect(Number(r.attempts)).to.equal(1);
        expect(r.failed_at).to.equal(null);
        expect(r.errors === null || r.errors === '' || r.errors === '[]', `errors ${String(r.errors)}`).to.equal(true);
      }
    });

    it('after kill -9 of a worker mid-task, another worker re-runs it within lockTimeout + one poll, the lost run counted', async () => {
      // Long enough that worker-b is up before worker-a finishes: a loaded machine took 2.7 s to
      // start it, and a 1.5 s task had ended by then, leaving nothing to recover.
      const id = await enqueue('slow', '5000');
      const a = worker('--worker-id', 'worker-a', '--lock-timeout', '2', '--heartbeat-interval', '0.5');
      await waitUntil(async () => (await getResult(id)).status === 'RUNNING', 'worker-a to start the task');
      // -v: the start of the recovered attempt is a debug line.
      const b = worker('--worker-id', 'worker-b', '--lock-timeout', '2', '--heartbeat-interval', '0.5', '-v');
      await waitUntil(() => b.stdout().includes('worker started'), 'worker-b to start');
      const killedAt = Date.now();
      a.child.kill('SIGKILL');
      const killedWhile = (await getResult(id)).status;
      expect(killedWhile, 'worker-a was killed mid-task').to.equal('RUNNING');
      await waitUntil(() => new RegExp(`task started .*id=${id} name=slow attempt=2`).test(b.stdout()), 'worker-b to start the recovered task', 15_000);
      const recoveredAfter = (Date.now() - killedAt) / 1000;
      // lockTimeout 2 s + one poll (0.1 s) + slack for this 2-core machine.
      expect(recoveredAfter).to.be.lessThan(2 + 0.1 + 1.5);
      await waitUntil(async () => (await getResult(id)).isFinished, 'the recovered task to finish', 20_000);
      const r = await getResult<{ pid: number }>(id);
      expect(r.status).to.equal('SUCCESSFUL');
      expect(r.attempts).to.equal(2);
      expect(r.workerId).to.equal('worker-b');
      expect(r.returnValue.pid).to.equal(b.child.pid);
      expect(r.errors[0]!.exceptionClass).to.equal('WorkerLostError');
      expect(r.errors[0]!.message).to.match(/worker worker-a stopped renewing its lease/);
      b.child.kill('SIGTERM');
      expect((await b.exited).code).to.equal(0);
    });

    it('a worker paused past its lease (SIGSTOP) cannot overwrite the re-run’s result when it wakes', async () => {
      // Long enough that the stop lands mid-task however slowly this machine gets the signal out.
      const id = await enqueue('slow', '4000');
      const a = worker('--worker-id', 'worker-a', '--lock-timeout', '2', '--heartbeat-interval', '0.5');
      await waitUntil(async () => (await getResult(id)).status === 'RUNNING', 'worker-a to start the task');
      a.child.kill('SIGSTOP');
      const b = worker('--worker-id', 'worker-b', '--lock-timeout', '2', '--heartbeat-interval', '0.5');
      try {
        await waitUntil(async () => (await getResult(id)).isFinished, 'worker-b to finish the task', 20_000);
      } catch (err) {
        a.child.kill('SIGCONT');
        throw new Error(`${(err as Error).message}\nworker-a printed:\n${a.stdout()}${a.stderr()}\nworker-b printed:\n${b.stdout()}${b.stderr()}`, { cause: err });
      }
      a.child.kill('SIGCONT');
      try {
        await waitUntil(() => /lease lost/.test(a.stdout()), 'worker-a to notice its lost lease', 15_000);
      } catch (err) {
        throw new Error(`${(err as Error).message}\nworker-a printed:\n${a.stdout()}${a.stderr()}\nworker-b printed:\n${b.stdout()}`, { cause: err });
      }
      const r = await getResult<{ pid: number }>(id);
      expect(r.workerId).to.equal('worker-b');
      expect(r.returnValue.pid).to.equal(b.child.pid);
      // A's late write (if it tried one) happened before it logged the lost lease.
      const again = await getResult<{ pid: number }>(id);
      expect(again.returnValue.pid).to.equal(b.child.pid);
      expect(again.workerId).to.equal('worker-b');
      for (const w of [a, b]) w.child.kill('SIGTERM');
      expect((await a.exited).code).to.equal(0);
      expect((await b.exited).code).to.equal(0);
    });

    it(`survives the database going away for a few seconds (${t.name === 'sqlite' ? 'a file locked by another process' : 'a cut TCP proxy'}), every task once`, async () => {
      await enqueue('effects', '1', '300');
      let proxy: TcpProxy | null = null;
      let workerEnv = env;
      if (t.name !== 'sqlite') {
        const u = new URL(t.url(project));
        proxy = new TcpProxy(u.hostname, Number(u.port));
        await proxy.start();
        workerEnv = { ...env, BGTASKS_DATABASE_URL: throughProxy(t.url(project), proxy.port) };
      }
      const w = startCli(['process-tasks', '--no-startup-delay', '--sleep', '0.1', '--lock-timeout', '20'], project.dir, workerEnv);
      children.push(w);
      try {
        await waitUntil(async () => (await count(effects)) >= 50, '50 tasks to run');
        if (proxy) {
          proxy.cut();
          await waitUntil(() => /database unreachable/.test(w.stdout()), 'the worker to notice the outage', 20_000);
          await new Promise((r) => setTimeout(r, 3000));
          proxy.restore();
        } else {
          // Another process holds SQLite's exclusive lock for 3 s; the busy timeout waits it out.
          const locker = spawnNode(
            [
              '-e',
              `const s=require(${JSON.stringify(path.join(process.cwd(), 'node_modules', 'sqlite3'))});const d=new s.Database(process.argv[1]);` +
                `d.exec('BEGIN EXCLUSIVE',e=>{if(e)throw e;setTimeout(()=>d.exec('COMMIT',()=>d.close()),3000)})`,
              path.join(project.dir, 'bgtasks.sqlite3'),
            ],
            project.dir,
          );
          expect((await locker.exited).code).to.equal(0);
        }
        await waitUntil(async () => (await count(store.tables.completed)) === 300, 'all 300 tasks to be recorded', 60_000);
        w.child.kill('SIGTERM');
        const r = await w.exited;
        expect(r.code).to.equal(0);
        expect(r.stderr).to.equal('');
        expect(await count(effects)).to.equal(300);
        expect(await count(store.tables.tasks)).to.equal(0);
        if (proxy) {
          expect(r.stdout.match(/database unreachable/g), r.stdout.split('\n').filter((l) => /WARN|ERROR/.test(l)).join('\n')).to.have.length(1);
          expect(r.stdout.match(/database reachable again/g)).to.have.length(1);
        } else {
          expect(r.stdout).not.to.match(/ ERROR |SQLITE_BUSY|database is locked/);
        }
      } finally {
        await proxy?.stop();
      }
    });

    it('SIGTERM with a running task exits 0 within the grace and leaves the task pending again, never RUNNING', async () => {
      const id = await enqueue('slow', '10000');
      const w = worker('--grace', '1');
      await waitUntil(async () => (await getResult(id)).status === 'RUNNING', 'the task to start');
      const sentAt = Date.now();
      w.child.kill('SIGTERM');
      const r = await w.exited;
      expect(r.code).to.equal(0);
      expect((Date.now() - sentAt) / 1000).to.be.lessThan(1 + 2);
      const res = await getResult(id);
      expect(res.status).to.equal('READY');
      expect(res.attempts).to.equal(0);
      const row = (await store.findPending(id))!;
      expect(row.lockedBy).to.equal(null);
    });
  });
}

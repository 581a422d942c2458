/**
 * Scenarios RESTART-01, RESTART-02, KILLCONN-01 and KILLCONN-02 (docs/scenarios.md) on private PostgreSQL and MariaDB
 * servers started by the test: spawned `process-tasks` workers whose task writes one effect row
 * per run (in a database of its own on the same server), so lost tasks and duplicate executions
 * are counted, not guessed. Each suite skips with a printed notice where the server binaries are
 * missing.
 */
import { expect } from 'chai';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { killLeftovers, makeProject, runCli, spawnNode, startCli, TSX_LOADER, type Project, type Spawned } from '../helpers/project.js';
import {
  leftovers,
  mariadbAvailable,
  postgresAvailable,
  skipUnless,
  startPrivateMariadb,
  startPrivatePostgres,
  type PrivateMariadb,
  type PrivatePostgres,
} from '../helpers/private-servers.js';
import { pollUntil } from '../helpers/processes.js';
import { TcpProxy, throughProxy } from '../helpers/tcp-proxy.js';
import {
  argOf,
  BULK_ENQUEUE,
  duplicates,
  EFFECT_TASKS,
  ENQUEUING_APP,
  enqueueOutcomes,
  expectRunning,
  failedEffectWrites,
  outputOf,
  runsPerTask,
  unexplainedDuplicates,
} from './fixtures.js';

const PREFIX = 'sc_';
const TASKS = `${PREFIX}tasks`;
const COMPLETED = `${PREFIX}completed_tasks`;

/** What the scenarios need of a private server, the same on both. */
interface Server {
  url: string;
  /** SQL on `database` (default test) through the admin socket, never through the workers' path. */
  query(sql: string, database?: string): Promise<Array<Record<string, unknown>>>;
  restart(): Promise<void>;
  /** A crash (SIGKILL of the server) and a start with crash recovery. */
  crashAndStart(): Promise<void>;
  /** Kills the client connections to `test` over TCP (bgtasks' own, not the effects' or the admin's); how many. */
  killWorkerConnections(): Promise<number>;
  destroy(): Promise<void>;
}

function postgresServer(s: PrivatePostgres): Server {
  return {
    url: s.url,
    query: (sql, database) => s.query(sql, [], database),
    restart: () => s.restart(),
    crashAndStart: async () => {
      await s.kill();
      await s.start();
    },
    killWorkerConnections: async () => (await s.terminateBackends((b) => b.database === 'test' && b.clientAddr !== null)).length,
    destroy: () => s.destroy(),
  };
}

function mariadbServer(s: PrivateMariadb): Server {
  return {
    url: s.url,
    query: (sql, database) => s.query(sql, [], database),
    restart: () => s.restart(),
    crashAndStart: async () => {
      await s.kill();
      await s.start();
    },
    killWorkerConnections: async () => (await s.killConnections((c) => c.db === 'test' && c.clientAddr === '127.0.0.1')).length,
    destroy: () => s.destroy(),
  };
}

const TARGETS = [
  {
    name: 'postgres',
    available: postgresAvailable,
    start: async () => postgresServer(await startPrivatePostgres()),
    createEffects: async (s: Server) => {
      await s.query('CREATE DATABASE fx', 'postgres');
      await s.query('CREATE TABLE effects (n int NOT NULL, pid int NOT NULL)', 'fx');
    },
    // The success write: one autocommit statement (core/store/dialects/postgres.ts completeMany).
    settleRequests: [/AS \(DELETE FROM "sc_tasks" WHERE id = ANY/],
  },
  {
    name: 'mariadb',
    available: mariadbAvailable,
    start: async () => mariadbServer(await startPrivateMariadb()),
    createEffects: async (s: Server) => {
      await s.query('CREATE DATABASE fx', 'mysql');
      await s.query('CREATE TABLE effects (n int NOT NULL, pid int NOT NULL) ENGINE=InnoDB', 'fx');
    },
    // The success write: INSERT … SELECT and DELETE in a transaction on one connection, then its COMMIT.
    settleRequests: [/INSERT INTO `sc_completed_tasks`/i, /COMMIT/],
  },
] as const;

for (const target of TARGETS) {
  describe(`scenarios on a private server [${target.name}]`, function () {
    this.timeout(120_000);
    let server: Server | undefined;
    let project: Project;
    let env: Record<string, string>;
    const children: Spawned[] = [];

    const count = async (sql: string, database = 'test'): Promise<number> => Number((await server!.query(sql, database))[0]!.n);
    const effectRows = async () => (await server!.query('SELECT n FROM effects', 'fx')) as Array<{ n: unknown }>;
    const worker = (args: string[] = [], extraEnv: Record<string, string> = {}) => {
      const s = startCli(['process-tasks', '--no-startup-delay', '--sleep', '0.2', '--concurrency', '4', ...args], project.dir, { ...env, ...extraEnv });
      children.push(s);
      return s;
    };

    before(async function () {
      this.timeout(120_000);
      skipUnless(this, target.available(), `the ${target.name} server scenarios (RESTART-01, RESTART-02, KILLCONN-01, KILLCONN-02)`);
      server = await target.start();
      await target.createEffects(server);
      project = makeProject({ 'tasks.ts': EFFECT_TASKS, 'bulk.ts': BULK_ENQUEUE, 'app.ts': ENQUEUING_APP }, ['knex']);
      env = {
        BGTASKS_DATABASE_URL: server.url,
        BGTASKS_TABLE_PREFIX: PREFIX,
        EFFECTS_URL: server.url.replace(/\/test$/, '/fx'),
        EFFECTS_TABLE: 'effects',
      };
      const m = await runCli(['migrate'], project.dir, env);
      expect(m.code, m.stderr + m.stdout).to.equal(0);
    });
    beforeEach(async () => {
      await server!.query(`DELETE FROM ${TASKS}`);
      await server!.query(`DELETE FROM ${COMPLETED}`);
      await server!.query('DELETE FROM effects', 'fx');
      rmSync(path.join(project.dir, 'effect-errors.txt'), { force: true });
    });
    afterEach(async function () {
      this.timeout(30_000);
      await killLeftovers(children);
    });
    after(async function () {
      this.timeout(60_000);
      await killLeftovers(children);
      project?.remove();
      await server?.destroy();
      expect(leftovers()).to.deep.equal([]);
    });

    /** Stops the workers (SIGTERM), expecting a clean exit. */
    const stopWorkers = async (ws: Spawned[]) => {
      for (const w of ws) w.child.kill('SIGTERM');
      for (const w of ws) {
        const r = await w.exited;
        expect(r.code, outputOf(w)).to.equal(0);
      }
    };

    const restartScenarios = [
      { id: 'RESTART-01', what: 'a server restart (orderly fast shutdown)', fault: (s: Server) => s.restart() },
      { id: 'RESTART-02', what: 'a server crash (SIGKILL) and its crash recovery', fault: (s: Server) => s.crashAndStart() },
    ];
    for (const sc of restartScenarios) {
    it(`${sc.id}: ${sc.what} mid-run loses nothing, runs no finished task twice, workers resume within seconds, enqueues fail clearly or succeed`, async function () {
      this.timeout(150_000);
      const ws = [worker(), worker()];
      const stopFile = path.join(project.dir, `stop-${sc.id}`);
      const app = spawnNode(['--import', TSX_LOADER, 'app.ts', stopFile, '5000'], project.dir, env);
      children.push(app);
      try {
        await pollUntil(async () => (await count('SELECT count(*) AS n FROM effects', 'fx')) >= 40, '40 tasks to run before the restart', 60_000, 50);
        const before = enqueueOutcomes(app.stdout()).length;
        const restartStarted = Date.now();
        await sc.fault(server!);
        const backAt = Date.now();
        const downMs = backAt - restartStarted;
        const effectsAtReturn = await count('SELECT count(*) AS n FROM effects', 'fx');
        // Resumed: tasks run again (the effects count grows) after the server's return.
        await pollUntil(async () => (await count('SELECT count(*) AS n FROM effects', 'fx')) > effectsAtReturn + 5, 'workers to resume after the restart', 30_000, 50);
        const resumeMs = Date.now() - backAt;
        // The app enqueues successfully again, then stops.
        await pollUntil(() => enqueueOutcomes(app.stdout()).filter((o) => o.ok).length >= before + 20, 'the app to enqueue again', 30_000, 50);
        writeFileSync(stopFile, '');
        const appResult = await app.exited;
        expect(appResult.code, outputOf(app)).to.equal(0);
        const outcomes = enqueueOutcomes(appResult.stdout);
        const stored = await count(`SELECT (SELECT count(*) FROM ${TASKS}) + (SELECT count(*) FROM ${COMPLETED}) AS n`);
        try {
          await pollUntil(async () => (await count(`SELECT count(*) AS n FROM ${TASKS}`)) === 0, 'every stored task to finish', 60_000, 100);
        } catch (e) {
          const left = await server!.query(`SELECT id, args, locked_by, claim_token, locked_until, attempts FROM ${TASKS}`);
          throw new Error(`${(e as Error).message}; left: ${JSON.stringify(left)}; workers: ${ws.map((w) => w.child.pid).join(', ')}`, { cause: e });
        }
        for (const w of ws) expectRunning(w, 'a worker');
        await stopWorkers(ws);

        const failedEnqueues = outcomes.filter((o) => !o.ok);
        const okNs = outcomes.filter((o) => o.ok).map((o) => o.n);
        const completed = (await server!.query(`SELECT args, failed_at, attempts FROM ${COMPLETED}`)) as Array<Record<string, unknown>>;
        const completedNs = completed.map((r) => argOf(r.args));
        const runs = runsPerTask(await effectRows());
        const failedWrites = failedEffectWrites(project.dir);
        process.stdout.write(
          `      ${target.name} ${sc.id}: down ${downMs} ms, workers resumed ${resumeMs} ms after the server's return; ` +
            `${outcomes.length} enqueues (${failedEnqueues.length} failed, slowest ${Math.max(...outcomes.map((o) => o.ms))} ms), ` +
            `${completed.length} tasks ran, ${completed.filter((r) => Number(r.attempts) > 1).length} of them retried; ` +
            `${[...failedWrites.values()].reduce((a, b) => a + b, 0)} effect writes failed in the task, ${duplicates(runs).length} of them committed all the same; ` +
            `first enqueue error: ${failedEnqueues[0]?.message ?? 'none'}\n`,
        );
        // Nothing lost: every enqueue that succeeded ran, and every stored task finished.
        expect(completed.length).to.equal(stored);
        expect(okNs.filter((n) => !completedNs.includes(n)), 'acknowledged enqueues that never ran').to.deep.equal([]);
        expect(completed.filter((r) => r.failed_at !== null), 'failed tasks').to.deep.equal([]);
        // Nothing ran twice, and every finished task's effect is there. A task whose effect write
        // failed (the server went away) threw and was retried, as it should be; the failed write
        // may have committed before its answer was lost, leaving a second effect row: that is the
        // effect database's ambiguity, so such a second row is allowed once per failed write.
        const twice = unexplainedDuplicates(runs, failedWrites);
        if (twice.length > 0) {
          // What each run of a duplicate was: its effect rows (which process) and its task's error record.
          const fx = (await server!.query('SELECT n, pid FROM effects', 'fx')) as Array<{ n: unknown; pid: unknown }>;
          const dup = new Set(twice.map(([n]) => n));
          const tasks = (await server!.query(`SELECT id, args, attempts, errors FROM ${COMPLETED}`)).filter((r) => dup.has(argOf(r.args)));
          const ids = tasks.map((r) => String(r.id));
          // The workers' warnings and errors, and every line that names one of those tasks.
          const lines = (w: Spawned) => `${w.stdout()}\n${w.stderr()}`.split('\n').filter((l) => /warn|error/i.test(l) || ids.some((id) => new RegExp(`\\b${id}\\b`).test(l)));
          process.stdout.write(
            `      duplicates: ${JSON.stringify(fx.filter((r) => dup.has(Number(r.n))))}\n      their tasks: ${JSON.stringify(tasks)}\n` +
              ws.map((w) => `      worker ${w.child.pid}:\n${lines(w).slice(-200).join('\n')}`).join('\n') + '\n',
          );
        }
        expect(twice, 'tasks that ran more than once').to.deep.equal([]);
        // Each run of such a task was an attempt of its own, counted.
        const attemptsOf = new Map(completed.map((r) => [argOf(r.args), Number(r.attempts)]));
        for (const [n, c] of duplicates(runs)) expect(attemptsOf.get(n), `attempts of task ${n}, whose effect is there ${c} times`).to.be.at.least(c);
        expect(completedNs.filter((n) => !runs.has(n)), 'finished tasks without an effect').to.deep.equal([]);
        // The application saw a clear error or a success, never a hang.
        expect(Math.max(...outcomes.map((o) => o.ms)), 'the slowest enqueue (ms)').to.be.lessThan(15_000);
        // A clear error: the task, the database and the cause, never the statement with the arguments.
        for (const f of failedEnqueues) {
          expect(f.message, `enqueue ${f.n}'s error`).to.match(/^Cannot enqueue effect: the database \S+ is unavailable: \S.{3,}/);
          expect(f.message, `enqueue ${f.n}'s error`).to.not.match(/insert into|\[\d+\]/i);
        }
        expect(resumeMs, 'ms from the server’s return to tasks running again').to.be.lessThan(10_000);
      } finally {
        if (!existsSync(stopFile)) writeFileSync(stopFile, '');
      }
    });
    }

    it('KILLCONN-01: the workers’ connections killed by the server 8 times during a run: every task runs once, the workers keep going', async function () {
      this.timeout(150_000);
      const total = 800;
      const r = await spawnNode(['--import', TSX_LOADER, 'bulk.ts', '1', String(total)], project.dir, env).exited;
      expect(r.code, r.stderr).to.equal(0);
      // A claim whose commit the worker never heard of is held until its lease ends: 5 s here.
      // Tasks of 100 ms, so that the run lasts long enough for every kill round to land mid-run.
      const ws = [1, 2].map(() => worker(['--lock-timeout', '5', '--heartbeat-interval', '1'], { EFFECT_MS: '100' }));
      let killed = 0;
      let rounds = 0;
      for (; rounds < 8; rounds++) {
        const ran = await count('SELECT count(*) AS n FROM effects', 'fx');
        if (ran >= total - 60) break;
        await pollUntil(async () => (await count('SELECT count(*) AS n FROM effects', 'fx')) >= ran + 30, `30 more tasks to run (round ${rounds + 1})`, 30_000, 25);
        killed += await server!.killWorkerConnections();
      }
      await pollUntil(async () => (await count(`SELECT count(*) AS n FROM ${COMPLETED}`)) === total, `all ${total} tasks to finish`, 60_000, 100);
      for (const w of ws) expectRunning(w, 'a worker');
      await stopWorkers(ws);
      const runs = runsPerTask(await effectRows());
      const completed = (await server!.query(`SELECT failed_at, attempts, errors FROM ${COMPLETED}`)) as Array<Record<string, unknown>>;
      process.stdout.write(`      ${target.name}: ${rounds} rounds killed ${killed} connections; ${completed.filter((c) => Number(c.attempts) > 1).length} tasks claimed again\n`);
      expect(rounds, 'kill rounds during the run').to.be.at.least(6);
      expect(killed, 'connections killed').to.be.at.least(rounds);
      expect(runs.size).to.equal(total);
      expect(duplicates(runs), 'tasks that ran more than once').to.deep.equal([]);
      expect(completed.filter((c) => c.failed_at !== null), 'failed tasks (with their errors)').to.deep.equal([]);
      expect(await count(`SELECT count(*) AS n FROM ${TASKS}`)).to.equal(0);
    });

    it('KILLCONN-02: the connection killed between a task’s end and its settle (the server committed, the worker never heard): the result is stored once, the task does not run again, the worker goes on', async function () {
      this.timeout(90_000);
      const enqueue = async (from: number, n: number) => {
        const r = await spawnNode(['--import', TSX_LOADER, 'bulk.ts', String(from), String(n)], project.dir, env).exited;
        expect(r.code, r.stderr).to.equal(0);
      };
      const u = new URL(server!.url);
      const proxy = new TcpProxy(u.hostname, Number(u.port));
      await proxy.start();
      try {
        await enqueue(1, 1);
        // Everything goes dark just after the success write (PostgreSQL) or its COMMIT (MariaDB) left.
        proxy.blackHoleAfter(...target.settleRequests);
        const w = worker(['--lock-timeout', '5', '--heartbeat-interval', '1'], { BGTASKS_DATABASE_URL: throughProxy(server!.url, proxy.port) });
        await pollUntil(async () => (await count(`SELECT count(*) AS n FROM ${COMPLETED}`)) === 1, 'the success write to commit on the server', 30_000, 20);
        const committedAt = Date.now();
        expect(proxy.blackHoling, 'the answer to the success write was dropped').to.equal(true);
        expect(await count(`SELECT count(*) AS n FROM ${TASKS}`), 'the pending row is gone').to.equal(0);
        // The server kills the connection whose answer never arrived (and the worker's others).
        const killed = await server!.killWorkerConnections();
        proxy.restore();
        await enqueue(2, 3);
        await pollUntil(async () => (await count(`SELECT count(*) AS n FROM ${COMPLETED}`)) === 4, 'the worker to run three more tasks', 30_000, 20);
        const goneOnMs = Date.now() - committedAt;
        expectRunning(w, 'the worker');
        await stopWorkers([w]);

        const runs = runsPerTask(await effectRows());
        const completed = (await server!.query(`SELECT args, failed_at, attempts FROM ${COMPLETED}`)) as Array<Record<string, unknown>>;
        const lostNotes = w.stdout().split('\n').filter((l) => /lease lost|discarded/i.test(l));
        process.stdout.write(`      ${target.name}: ${killed} connections killed after the ambiguous commit; three more tasks done ${goneOnMs} ms after it; the worker said: ${lostNotes.join(' | ') || 'nothing about a lost result'}\n`);
        expect(killed, 'connections killed').to.be.at.least(1);
        // Its write tried again found its own completed row: a success, not a result discarded.
        expect(lostNotes, 'warnings that the result was discarded').to.deep.equal([]);
        expect(w.stdout().split('\n').filter((l) => /task succeeded .*name=effect/.test(l)), 'successes the worker reported').to.have.length(4);
        expect(completed.map((r) => argOf(r.args)).sort(), 'one completed row per task').to.deep.equal([1, 2, 3, 4]);
        expect(completed.filter((r) => r.failed_at !== null), 'failed tasks').to.deep.equal([]);
        expect(completed.map((r) => Number(r.attempts)), 'attempts').to.deep.equal([1, 1, 1, 1]);
        expect(runs.size).to.equal(4);
        expect(duplicates(runs), 'tasks that ran more than once').to.deep.equal([]);
        expect(await count(`SELECT count(*) AS n FROM ${TASKS}`)).to.equal(0);
      } finally {
        await proxy.stop();
      }
    });
  });
}

/**
 * Scenario HOSTS-01 (docs/scenarios.md) on private PostgreSQL and MariaDB servers: three worker
 * hosts, each a network namespace made by the test (test/helpers/netns.ts) running the real
 * `process-tasks` CLI, against one server listening on the test bridge's private address. One host
 * is cut off (every packet dropped) for longer than a lease while it runs tasks: the other hosts
 * recover its tasks and record their results; when the link heals, the cut host's late results are
 * refused by the claim-token fence, and it goes on claiming and completing new tasks.
 *
 * Each run of a task appends a line to a file of the project (the file system is shared by every
 * namespace and is not cut), so the test counts runs, including those whose result was fenced.
 */
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createNetHosts, netnsAvailable, type NetHosts } from '../helpers/netns.js';
import { childEnv, CLI, makeProject, runCli, spawnNode, TSX_LOADER, type Project } from '../helpers/project.js';
import { leftovers, mariadbAvailable, postgresAvailable, skipUnless, startPrivateMariadb, startPrivatePostgres } from '../helpers/private-servers.js';
import { pollUntil } from '../helpers/processes.js';
import { argOf } from './fixtures.js';

const PREFIX = 'hs_';
const TASKS = `${PREFIX}tasks`;
const COMPLETED = `${PREFIX}completed_tasks`;
const WORKERS = `${PREFIX}workers`;

/**
 * `slow(n)` and `own(n)` sleep TASK_MS, append "n host pid" to RUNS_FILE, and return n and host.
 * Every host works the queue of `slow`; only the host to be cut works the queue of `own`.
 */
const TASK_FILE = `
import { appendFileSync } from 'node:fs';
import { background } from 'bgtasks';
async function run(n: number) {
  await new Promise((r) => setTimeout(r, Number(process.env.TASK_MS ?? 1500)));
  appendFileSync(process.env.RUNS_FILE!, n + ' ' + process.env.HOST_LABEL + ' ' + process.pid + '\\n');
  return { n, host: process.env.HOST_LABEL };
}
export const slow = background({ name: 'hosts.slow', queue: 'hosts-shared' }, async function slow(n: number) {
  return run(n);
});
// Only the host to be cut works this queue: nobody else can re-run these tasks.
export const own = background({ name: 'hosts.own', queue: 'hosts-own' }, async function own(n: number) {
  return run(n);
});
`;

/** `enqueue.ts TASK FROM COUNT\`: enqueues TASK(FROM … FROM+COUNT-1) (slow or own) in one bulk insert. */
const ENQUEUE = `
import { closeConnections } from 'bgtasks';
import { own, slow } from './tasks.js';
const task = process.argv[2] === 'own' ? own : slow;
const from = Number(process.argv[3]), count = Number(process.argv[4]);
await task.bulk(Array.from({ length: count }, (_, i) => [from + i] as [number]));
await closeConnections();
process.exit(0);
`;

const HOSTS = 3;
const CUT = 1;
const LOCK_TIMEOUT_S = 4;
const FIRST = 36;
const SECOND = 36;
/** The own(n) tasks, which only the cut host works: numbered apart from the shared ones. */
const OWN = [1001, 1002];

interface Server {
  url: string;
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  destroy(): Promise<void>;
}

const TARGETS = [
  {
    name: 'postgres',
    available: postgresAvailable,
    start: async (host: string): Promise<Server> => {
      const s = await startPrivatePostgres({ host });
      return { url: s.url, query: (sql) => s.query(sql, [], 'test'), destroy: () => s.destroy() };
    },
  },
  {
    name: 'mariadb',
    available: mariadbAvailable,
    start: async (host: string): Promise<Server> => {
      const s = await startPrivateMariadb({ host });
      return { url: s.url, query: (sql) => s.query(sql, [], 'test'), destroy: () => s.destroy() };
    },
  },
] as const;

interface HostWorker {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

for (const target of TARGETS) {
  describe(`HOSTS-01: three worker hosts, one cut off for longer than a lease [${target.name}]`, function () {
    this.timeout(120_000);
    let net: NetHosts | undefined;
    let server: Server | undefined;
    let project: Project | undefined;
    let env: Record<string, string>;
    const workers: HostWorker[] = [];

    before(async function () {
      this.timeout(120_000);
      skipUnless(this, netnsAvailable(), `HOSTS-01 on ${target.name} (network namespaces)`);
      skipUnless(this, target.available(), `HOSTS-01 on ${target.name} (server binaries)`);
      net = await createNetHosts(HOSTS);
      server = await target.start(net.serverAddress);
      project = makeProject({ 'tasks.ts': TASK_FILE, 'enqueue.ts': ENQUEUE });
      env = { BGTASKS_DATABASE_URL: server.url, BGTASKS_TABLE_PREFIX: PREFIX, RUNS_FILE: path.join(project.dir, 'runs.txt'), TASK_MS: '1500' };
      const m = await runCli(['migrate'], project.dir, env);
      expect(m.code, m.stderr + m.stdout).to.equal(0);
    });
    after(async function () {
      this.timeout(60_000);
      // destroy() kills what still runs in the namespaces before removing them.
      await net?.destroy();
      workers.length = 0;
      await server?.destroy();
      project?.remove();
      expect(leftovers(), 'namespaces, links, servers or temp dirs left behind').to.deep.equal([]);
    });

    const count = async (sql: string) => Number((await server!.query(sql))[0]!.n);
    const enqueue = async (task: 'slow' | 'own', from: number, n: number) => {
      const r = await spawnNode(['--import', TSX_LOADER, 'enqueue.ts', task, String(from), String(n)], project!.dir, env).exited;
      expect(r.code, r.stderr).to.equal(0);
    };
    const startWorker = (i: number): HostWorker => {
      const queues = i === CUT ? 'hosts-shared,hosts-own' : 'hosts-shared';
      const args = [CLI, 'process-tasks', '--no-startup-delay', '--worker-id', `h${i}`, '--queue', queues, '--concurrency', '4', '--sleep', '0.2'];
      // A short lease, and short waits so a cut-off host gives up its dead connections quickly.
      args.push('--lock-timeout', String(LOCK_TIMEOUT_S), '--heartbeat-interval', '1', '--connect-timeout', '2', '--statement-timeout', '3');
      const child = net!.exec(i, process.execPath, args, { cwd: project!.dir, env: childEnv({ ...env, HOST_LABEL: `h${i}` }) });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      return { child, output: () => out, exited };
    };
    const runs = (): Array<{ n: number; host: string }> => {
      const file = env.RUNS_FILE!;
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => ({ n: Number(l.split(' ')[0]), host: l.split(' ')[1]! }));
    };

    it('the cut host’s tasks are recovered by the others, its late results are fenced, it rejoins and completes new tasks; every task succeeds once', async function () {
      this.timeout(120_000);
      const t0 = Date.now();
      await enqueue('own', OWN[0]!, OWN.length);
      await enqueue('slow', 1, FIRST);
      for (let i = 0; i < HOSTS; i++) workers.push(startWorker(i));
      const cutHost = `h${CUT}`;
      const heldBy = async (queue: string) => count(`SELECT count(*) AS n FROM ${TASKS} WHERE locked_by = '${cutHost}' AND queue = '${queue}'`);
      await pollUntil(async () => (await heldBy('hosts-own')) === OWN.length && (await heldBy('hosts-shared')) >= 1, 'the host to be cut to hold its own tasks and shared ones', 30_000, 25);
      net!.cut(CUT);
      const cutAt = Date.now();
      // What the cut host still holds, read once a commit it sent just before the cut has landed
      // (nothing it sends arrives any more).
      await pollUntil(() => Date.now() - cutAt >= 500, 'half a second after the cut', 1_000, 50);
      const held = (await server!.query(`SELECT id, args FROM ${TASKS} WHERE locked_by = '${cutHost}' AND queue = 'hosts-shared'`)).map((r) => ({ id: String(r.id), n: argOf(r.args) }));
      expect(held.length, 'tasks held by the cut host').to.be.at.least(1);
      const heldIds = held.map((h) => `'${h.id}'`).join(',');
      await pollUntil(async () => (await count(`SELECT count(*) AS n FROM ${COMPLETED} WHERE task_id IN (${heldIds})`)) === held.length, 'the cut host’s tasks to be recovered and completed by the others', 40_000, 100);
      const recoveredMs = Date.now() - cutAt;
      // Stay cut for longer than a lease in any case.
      await pollUntil(() => Date.now() - cutAt > (LOCK_TIMEOUT_S + 2) * 1000, 'the cut to last longer than a lease', 20_000, 100);
      net!.heal(CUT);
      const healAt = Date.now();
      // Rejoined: its registry heartbeat is written again.
      await pollUntil(async () => (await count(`SELECT count(*) AS n FROM ${WORKERS} WHERE id = '${cutHost}' AND heartbeat_at > ${healAt}`)) === 1, 'the cut host to beat again', 30_000, 100);
      const rejoinMs = Date.now() - healAt;
      await enqueue('slow', FIRST + 1, SECOND);
      const total = FIRST + SECOND + OWN.length;
      await pollUntil(async () => (await count(`SELECT count(*) AS n FROM ${COMPLETED}`)) === total, `all ${total} tasks to finish`, 40_000, 100);
      // The fence: each held task the cut host ran is refused when its result finally arrives.
      // A result refused, or an attempt whose lease was found lost while it ran; not a prefetched
      // task dropped before it started (`lease lost before the task started`): it never ran here.
      const fencedIn = (out: string) =>
        held.filter((h) => new RegExp(`lease lost (before the result was recorded|while the task ran)[^\\n]*\\b${h.id}\\b`).test(out));
      const ranOnCut = () => held.filter((h) => runs().some((r) => r.n === h.n && r.host === cutHost));
      await pollUntil(() => fencedIn(workers[CUT]!.output()).length >= ranOnCut().length, 'the cut host to report its late results as fenced', 30_000, 100);
      for (const w of workers) expect(w.child.exitCode, `a worker exited:\n${w.output()}`).to.equal(null);
      for (const w of workers) w.child.kill('SIGTERM');
      for (const w of workers) expect(await w.exited, w.output()).to.equal(0);
      const elapsedMs = Date.now() - t0;

      const completed = await server!.query(`SELECT task_id, args, worker_id, attempts, failed_at, return_value, errors FROM ${COMPLETED}`);
      const ran = runs();
      const completedNs = completed.map((c) => argOf(c.args));
      const heldNs = new Set(held.map((h) => h.n));
      const runsOf = (n: number) => ran.filter((r) => r.n === n).length;
      const byCutAfterHeal = completed.filter((c) => c.worker_id === cutHost && argOf(c.args) > FIRST && argOf(c.args) <= FIRST + SECOND).length;
      const ownRows = completed.filter((c) => OWN.includes(argOf(c.args)));
      const fenced = fencedIn(workers[CUT]!.output()).length;
      process.stdout.write(
        `      ${target.name} HOSTS-01: ${held.length} tasks held by the cut host, recovered and completed ${recoveredMs} ms after the cut; ` +
          `${ranOnCut().length} of them also ran on the cut host, ${fenced} late results fenced; rejoined ${rejoinMs} ms after the heal, ` +
          `then completed ${byCutAfterHeal} of ${SECOND} new tasks; its ${OWN.length} own tasks recorded by ${ownRows.map((c) => `${c.worker_id} (attempt ${c.attempts}, ${c.errors ? (JSON.parse(String(c.errors)) as unknown[]).length : 0} lease recoveries)`).join(', ')}; ${completed.length} completed by ${[...new Set(completed.map((c) => c.worker_id))].sort().join(', ')}; ${elapsedMs} ms in all\n`,
      );
      // Every task succeeded, and its success is recorded once.
      expect(await count(`SELECT count(*) AS n FROM ${TASKS}`), 'tasks left').to.equal(0);
      expect(completed.length).to.equal(total);
      expect(new Set(completed.map((c) => String(c.task_id))).size, 'distinct completed task ids').to.equal(total);
      expect([...completedNs].sort((a, b) => a - b)).to.deep.equal([...Array.from({ length: FIRST + SECOND }, (_, i) => i + 1), ...OWN]);
      expect(completed.filter((c) => c.failed_at !== null), 'failed tasks').to.deep.equal([]);
      // The held tasks: recovered (a second attempt) and recorded by another host, whose result it is.
      for (const h of held) {
        const c = completed.find((r) => String(r.task_id) === h.id)!;
        const result = (typeof c.return_value === 'string' ? JSON.parse(c.return_value) : c.return_value) as { host: string };
        expect({ worker: c.worker_id === cutHost, attempts: Number(c.attempts) }, `held task ${h.n}`).to.deep.equal({ worker: false, attempts: 2 });
        expect(result.host, `the recorded result of held task ${h.n}`).to.equal(c.worker_id);
        expect(runsOf(h.n), `runs of held task ${h.n}`).to.be.within(1, 2);
      }
      // The cut host's late results were refused, one warning each.
      expect(ranOnCut().length, 'held tasks that ran to their end on the cut host').to.be.at.least(1);
      expect(fenced, 'late results fenced').to.equal(ranOnCut().length);
      // No other task ran twice; the cut host works again after the heal.
      expect(completedNs.filter((n) => !heldNs.has(n) && runsOf(n) !== 1), 'tasks not held by the cut host that did not run exactly once').to.deep.equal([]);
      expect(byCutAfterHeal, 'new tasks completed by the healed host').to.be.at.least(1);
      // What nobody else could take over, the cut host finished during the cut and recorded after
      // the heal: its own result, from its one run.
      for (const n of OWN) {
        const c = ownRows.find((r) => argOf(r.args) === n)!;
        const result = (typeof c.return_value === 'string' ? JSON.parse(c.return_value) : c.return_value) as { host: string };
        expect({ worker: c.worker_id, host: result.host, runs: runsOf(n) }, `own task ${n}`).to.deep.equal({ worker: cutHost, host: cutHost, runs: 1 });
      }
    });
  });
}

/**
 * Flow control across spawned worker processes, on every database (SQLite included: several
 * processes on one file obey the same limits). Each task appends its start and end to one file,
 * stamped with process.hrtime (CLOCK_MONOTONIC: one clock for every process of the machine);
 * rate windows are read from the claim times the workers recorded (started_at), the times a rate
 * limit is measured against (docs/flow-control.md).
 *
 * - 4 workers of concurrency 8, a queue limit of 5 and a per-key limit of 1 over 20 keys: at no
 *   instant do the recorded intervals exceed either limit (and the queue limit is reached).
 * - A rate limit of 50 per 2 s: no 2 s window holds more than 50 starts, and with a backlog the
 *   rate reaches at least 90 % of the limit.
 * - Pause: once `bgtasks queues pause` returns, no task of the queue starts on any worker (within
 *   one poll; at once on PostgreSQL, whose workers here poll only every 5 s); resume restarts them.
 * - A worker killed (SIGKILL) while holding a limited slot frees it when its lease expires and
 *   its task is recovered; afterwards, the limits are used to the full (nothing stays counted).
 */
import { expect } from 'chai';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { killLeftovers, makeProject, runCli, startCli, type Project, type Spawned } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { expectCode } from '../helpers/cli-suite.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import type { Store } from '../../core/store/store.js';

const TASKS = `
import { appendFileSync, existsSync } from 'node:fs';
import { background } from 'bgtasks';

const log = (kind: string, tag: string) => appendFileSync(process.env.FLOW_LOG!, kind + ' ' + process.hrtime.bigint() + ' ' + tag + ' ' + process.pid + '\\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const limited = background({ name: 'limited', queue: 'lim', concurrencyKey: (key: string) => key }, async function limited(key: string, n: number, ms: number) {
  log('S', 'lim/' + key + '/' + n);
  await sleep(ms);
  log('E', 'lim/' + key + '/' + n);
});

export const keyed = background({ name: 'keyed', queue: 'keys', concurrencyKey: (key: string) => key }, async function keyed(key: string, n: number, ms: number) {
  log('S', 'key/' + key + '/' + n);
  await sleep(ms);
  log('E', 'key/' + key + '/' + n);
});

export const quick = background({ name: 'quick' }, async function quick(tag: string, ms: number) {
  log('S', tag);
  await sleep(ms);
  log('E', tag);
});

export const hold = background({ name: 'hold', queue: 'solo' }, async function hold(n: number) {
  log('S', 'hold/' + n);
  while (!existsSync(process.env.RELEASE!)) await sleep(10);
  log('E', 'hold/' + n);
});
`;

interface Event {
  kind: 'S' | 'E';
  at: bigint;
  tag: string;
  pid: string;
}

function events(file: string): Event[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [kind, at, tag, pid] = l.split(' ');
      return { kind: kind as 'S' | 'E', at: BigInt(at!), tag: tag!, pid: pid! };
    });
}

/**
 * The most intervals open at once, overall and per group. At equal times an end comes first: the
 * task that ended was settled before the next one could be claimed against its slot.
 */
function maxOpen(evs: Event[], group: (tag: string) => string): { total: number; perGroup: number } {
  const sorted = [...evs].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.kind === b.kind ? 0 : a.kind === 'E' ? -1 : 1));
  let open = 0;
  let total = 0;
  let perGroup = 0;
  const byGroup = new Map<string, number>();
  for (const e of sorted) {
    const g = group(e.tag);
    const d = e.kind === 'S' ? 1 : -1;
    open += d;
    byGroup.set(g, (byGroup.get(g) ?? 0) + d);
    total = Math.max(total, open);
    perGroup = Math.max(perGroup, byGroup.get(g)!);
  }
  return { total, perGroup };
}

const nowNs = () => process.hrtime.bigint();
const ms = (ns: bigint) => Number(ns / 1_000_000n);

for (const t of cliTargets()) {
  describe(`flow control across worker processes, spawned [${t.name}]`, function () {
    this.timeout(90_000);
    let project: Project;
    let store: Store;
    let env: Record<string, string>;
    let logFile: string;
    let release: string;
    const children: Spawned[] = [];
    let seq = 0;

    const cli = (...args: string[]) => runCli(args, project.dir, env);
    const worker = (...args: string[]) => {
      const w = startCli(['process-tasks', '--no-startup-delay', ...args], project.dir, env);
      children.push(w);
      return w;
    };
    /**
     * `n` workers of concurrency 8, each waited for until it has started: one still starting when
     * the others have run every task would be stopped before it could handle the signal.
     */
    const startWorkers = async (n: number): Promise<Spawned[]> => {
      const ws = Array.from({ length: n }, () => worker('--concurrency', '8', '--sleep', '0.05', '--lock-timeout', '10', '--exclude-queues', 'solo,paused'));
      for (const w of ws) await waitUntil(() => /worker started/.test(w.stdout() + w.stderr()), 'the worker to start', 30_000);
      return ws;
    };
    const stop = async (ws: Spawned[]) => {
      for (const w of ws) w.child.kill('SIGTERM');
      for (const w of ws) {
        const r = await w.exited;
        expect(r.code, `worker exit\n${r.stdout}\n${r.stderr}`).to.equal(0);
        expect(r.stdout + r.stderr).to.not.match(/ERROR|SQLITE_BUSY|database is locked/);
      }
    };
    const insert = async (name: string, calls: Array<{ args: unknown[]; queue?: string | null; key?: string | null }>) => {
      const now = Date.now();
      const tasks = calls.map((c) => {
        const args = JSON.stringify(c.args);
        return plainTask({ name, args, hash: taskHash(name, args + ++seq), runAt: now, enqueuedAt: now, queue: c.queue ?? null, concurrencyKey: c.key ?? null });
      });
      return store.insertTasks(tasks);
    };
    const completed = async (queue: string) =>
      (await store.knex(store.tables.completed).where('queue', queue).select('task_id', 'started_at', 'failed_at', 'attempts', 'worker_id')) as Array<Record<string, unknown>>;
    const count = async (table: string, queue: string) => Number(((await store.knex(table).where('queue', queue).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);

    before(async function () {
      this.timeout(60_000);
      project = makeProject({ 'tasks.ts': TASKS });
      logFile = path.join(project.dir, 'flow.log');
      release = path.join(project.dir, 'release');
      env = { ...t.env, FLOW_LOG: logFile, RELEASE: release };
      expectCode(await cli('migrate'), 0);
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
    });
    after(async function () {
      this.timeout(60_000);
      await killLeftovers(children);
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project.remove();
    });

    // Runs after this file's outer tests (mocha runs a describe's own tests first), which may
    // leave a limit on the queue `solo`: these workers exclude it, so the only limit on what they
    // claim is one task per key, and they take chains.
    describe('with three workers of concurrency 8 and no limit but one task per key', () => {
      let workers: Spawned[] = [];
      before(async function () {
        this.timeout(60_000);
        workers = await startWorkers(3);
      });
      after(async () => {
        await stop(workers);
      });

      it('never runs two tasks of a key at once, while a worker takes several tasks of a key and runs them one after another', async () => {
        const calls = [];
        for (let k = 0; k < 20; k++) for (let i = 0; i < 12; i++) calls.push({ args: [`k${String(k).padStart(2, '0')}`, k * 100 + i, 2 + ((k * 7 + i * 13) % 10)], queue: 'keys', key: `k${String(k).padStart(2, '0')}` });
        await insert('keyed', calls);
        await waitUntil(async () => (await count(store.tables.completed, 'keys')) === 240, '240 completed tasks', 60_000, 50);
        const evs = events(logFile).filter((e) => e.tag.startsWith('key/'));
        expect(evs.filter((e) => e.kind === 'S')).to.have.length(240);
        expect(maxOpen(evs, (tag) => tag.split('/')[1]!).perGroup, 'tasks of one key running at once').to.equal(1);
        const rows = (await store.knex(store.tables.completed).where('queue', 'keys').select('worker_id', 'started_at', 'concurrency_key', 'failed_at', 'attempts')) as Array<Record<string, unknown>>;
        expect(rows.every((r) => r.failed_at === null && Number(r.attempts) === 1)).to.equal(true);
        // Claimed together (one claim: one worker, one claim time) and of one key: a chain.
        const groups = new Map<string, number>();
        for (const r of rows) {
          const g = `${String(r.worker_id)}/${String(r.started_at)}/${String(r.concurrency_key)}`;
          groups.set(g, (groups.get(g) ?? 0) + 1);
        }
        expect(Math.max(...groups.values()), 'tasks of one key in one claim').to.be.within(2, 4);
      });
    });

    describe('with four workers of concurrency 8', () => {
      let workers: Spawned[] = [];
      before(async function () {
        this.timeout(60_000);
        workers = await startWorkers(4);
      });
      after(async () => {
        await stop(workers);
      });

      it('never runs more than the queue limit (5) in the queue, nor more than one task per key (20 keys)', async () => {
        expectCode(await cli('queues', 'set', 'lim', '--concurrency', '5'), 0);
        const calls = [];
        for (let k = 0; k < 20; k++) for (let i = 0; i < 12; i++) calls.push({ args: [`k${String(k).padStart(2, '0')}`, k * 100 + i, 5 + ((k * 7 + i * 13) % 20)], queue: 'lim', key: `k${String(k).padStart(2, '0')}` });
        await insert('limited', calls);
        await waitUntil(async () => (await count(store.tables.completed, 'lim')) === 240, '240 completed tasks', 60_000, 50);
        const evs = events(logFile).filter((e) => e.tag.startsWith('lim/'));
        expect(evs.filter((e) => e.kind === 'S')).to.have.length(240);
        const m = maxOpen(evs, (tag) => tag.split('/')[1]!);
        expect(m.total, 'tasks of queue lim running at once').to.equal(5);
        expect(m.perGroup, 'tasks of one key running at once').to.equal(1);
        expect(new Set(evs.map((e) => e.pid)).size, 'workers that ran tasks').to.be.greaterThan(1);
        const rows = await completed('lim');
        expect(rows.every((r) => r.failed_at === null && Number(r.attempts) === 1)).to.equal(true);
      });

      it('a rate limit of 50 per 2 s: no 2 s window holds more than 50 starts, and the rate reaches 90 % of it', async () => {
        expectCode(await cli('queues', 'set', 'rate', '--rate', '50/2'), 0);
        await insert('quick', Array.from({ length: 130 }, (_, i) => ({ args: [`rate/${i}`, 1], queue: 'rate' })));
        await waitUntil(async () => (await count(store.tables.completed, 'rate')) === 130, '130 completed tasks', 30_000, 50);
        const starts = (await completed('rate')).map((r) => Number(r.started_at)).sort((a, b) => a - b);
        let most = 0;
        for (let i = 0, j = 0; i < starts.length; i++) {
          while (j < starts.length && starts[j]! < starts[i]! + 2000) j++;
          most = Math.max(most, j - i);
        }
        expect(most, 'starts in the busiest 2 s window').to.be.at.most(50);
        // With 130 waiting, the first two windows (4 s from the first start) could hold 100.
        const inTwoWindows = starts.filter((s) => s < starts[0]! + 4000).length;
        expect(inTwoWindows, 'starts in the first 4 s').to.be.at.least(90);
        // And the worker processes read it from the database: the starts are recorded there.
        const recorded = Number(((await store.knex(store.tables.rateStarts).where('limiter', 'queue rate#rate').count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
        expect(recorded).to.be.within(1, 130);
      });

      it('after a mixed load nothing stays counted: the queue limit is used to the full again', async () => {
        const before = events(logFile).length;
        await insert('limited', Array.from({ length: 10 }, (_, i) => ({ args: [`z${i}`, i, 300], queue: 'lim', key: `z${i}` })));
        await waitUntil(async () => (await count(store.tables.completed, 'lim')) === 250, '10 more completed tasks', 30_000, 50);
        const m = maxOpen(events(logFile).slice(before).filter((e) => e.tag.startsWith('lim/')), (tag) => tag.split('/')[1]!);
        expect(m.total).to.equal(5);
        expect(Number(((await store.knex(store.tables.tasks).whereNotNull('locked_by').count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n)).to.equal(0);
      });
    });

    it(`pause: once \`queues pause\` returns no task of the queue starts on any worker (${t.name === 'postgres' ? 'at once, by NOTIFY' : 'within one poll'}); resume restarts them`, async () => {
      // PostgreSQL's workers poll only every 5 s: the pause must reach them through NOTIFY.
      const sleep = t.name === 'postgres' ? 5 : 0.5;
      const allowanceMs = t.name === 'postgres' ? 750 : sleep * 1000 + 500;
      await insert('quick', Array.from({ length: 400 }, (_, i) => ({ args: [`paused/${i}`, 150], queue: 'paused' })));
      const ws = [worker('--concurrency', '8', '--sleep', String(sleep), '--queue', 'paused'), worker('--concurrency', '8', '--sleep', String(sleep), '--queue', 'paused')];
      try {
        const started = () => events(logFile).filter((e) => e.kind === 'S' && e.tag.startsWith('paused/'));
        await waitUntil(() => started().length >= 20, '20 tasks of the queue to start', 30_000, 20);
        expectCode(await cli('queues', 'pause', 'paused'), 0);
        const returned = nowNs();
        const ranBefore = started().length;
        expect(ranBefore, 'tasks started before the pause').to.be.below(400);
        // Every task that started has ended, and the workers had time for several polls.
        await waitUntil(() => {
          const evs = events(logFile).filter((e) => e.tag.startsWith('paused/'));
          return evs.filter((e) => e.kind === 'S').length === evs.filter((e) => e.kind === 'E').length;
        }, 'the running tasks to end', 10_000, 20);
        const waitUntilNs = nowNs() + BigInt(Math.round(allowanceMs + 500) * 1e6);
        await waitUntil(() => nowNs() > waitUntilNs, 'a poll and more to pass', 10_000, 50);
        const late = started().filter((e) => e.at > returned + BigInt(allowanceMs * 1e6));
        expect(late.map((e) => `${e.tag} ${ms(e.at - returned)} ms after`), 'tasks started after the pause').to.deep.equal([]);
        const left = await count(store.tables.tasks, 'paused');
        expect(left).to.be.above(0);
        expect(Number(((await store.knex(store.tables.tasks).where('queue', 'paused').whereNotNull('locked_by').count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n)).to.equal(0);
        expectCode(await cli('queues', 'resume', 'paused'), 0);
        await waitUntil(async () => (await count(store.tables.completed, 'paused')) === 400, 'all 400 to finish after the resume', 30_000, 50);
      } finally {
        await stop(ws);
      }
    });

    it('a worker killed while holding a limited slot frees it once its lease expires; its task is recovered', async () => {
      expectCode(await cli('queues', 'set', 'solo', '--concurrency', '1'), 0);
      const [first] = await insert('hold', [{ args: [1], queue: 'solo' }]);
      const doomed = worker('--concurrency', '4', '--sleep', '0.05', '--lock-timeout', '2', '--queue', 'solo');
      await waitUntil(() => events(logFile).some((e) => e.tag === 'hold/1' && e.kind === 'S'), 'the doomed worker to start the task', 20_000, 20);
      doomed.child.kill('SIGKILL');
      await doomed.exited;
      const lease = (await store.knex(store.tables.tasks).where('id', first).first()) as Record<string, unknown>;
      const leaseUntil = Number(lease.locked_until);
      const mark = events(logFile).length;
      const [second] = await insert('hold', [{ args: [2], queue: 'solo' }]);
      writeFileSync(release, '');
      const heir = worker('--concurrency', '4', '--sleep', '0.05', '--lock-timeout', '2', '--queue', 'solo');
      try {
        await waitUntil(async () => (await count(store.tables.completed, 'solo')) === 2, 'both tasks to finish', 30_000, 50);
      } finally {
        await stop([heir]);
      }
      const rows = await completed('solo');
      const of = (id: string) => rows.find((r) => String(r.task_id) === id)!;
      // The second task waited for the dead worker's slot: it started only after that lease expired.
      expect(Number(of(second!).started_at)).to.be.at.least(leaseUntil);
      // The first was recovered (its attempt kept: the failure was the worker's) and ran again.
      expect([of(first!).failed_at, Number(of(first!).attempts)]).to.deep.equal([null, 2]);
      // The recovered task and the second one never ran at once (the killed attempt wrote no end).
      expect(maxOpen(events(logFile).slice(mark).filter((e) => e.tag.startsWith('hold/')), () => 'solo').total).to.equal(1);
      const holdStarts = events(logFile).filter((e) => e.tag.startsWith('hold/') && e.kind === 'S');
      expect(holdStarts.map((e) => e.tag)).to.have.members(['hold/1', 'hold/1', 'hold/2']);
    });
  });
}

/**
 * The flow-control commands, spawned, on every database: `bgtasks queues` (listing and --json),
 * `queues pause|resume|set` (bad values exit 2 with nothing stored; an unknown queue can be
 * paused), `bgtasks why ID` (exit 0 runnable or running, 1 held back, 2 unknown id; --json), and
 * `bgtasks workers` (a live worker with its running task; a stopped one with --all).
 */
import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
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
import { existsSync } from 'node:fs';
import { background } from 'bgtasks';

export const hold = background({ name: 'hold', queue: 'work' }, async function hold(n: number) {
  while (!existsSync(process.env.RELEASE!)) await new Promise((r) => setTimeout(r, 10));
  return n;
});
`;

for (const t of cliTargets()) {
  describe(`bgtasks queues, why and workers, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    let env: Record<string, string>;
    let release: string;
    const children: Spawned[] = [];

    const cli = (...args: string[]) => runCli(args, project.dir, env);
    const insert = async (name: string, n: number, queue: string | null) => {
      const args = JSON.stringify([n]);
      const now = Date.now();
      const [id] = await store.insertTasks([plainTask({ name, args, hash: taskHash(name, args), runAt: now, enqueuedAt: now, queue })]);
      return id!;
    };
    const queueRows = async () => (await store.knex(store.tables.queues).select('name', 'paused', 'concurrency', 'rate_limit').orderBy('name')) as Array<Record<string, unknown>>;

    before(async function () {
      this.timeout(60_000);
      project = makeProject({ 'tasks.ts': TASKS });
      release = path.join(project.dir, 'release');
      env = { ...t.env, RELEASE: release };
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

    it('queues lists nothing, then every queue with its state, limits and counts; --json too', async () => {
      let r = await cli('queues');
      expectCode(r, 0);
      expect(r.stdout).to.match(/No queues/);
      r = await cli('queues', '--json');
      expect(JSON.parse(r.stdout)).to.deep.equal([]);

      await insert('hold', 1, 'mail');
      await insert('hold', 2, 'mail');
      await insert('hold', 3, null);
      r = await cli('queues', 'pause', 'mail');
      expectCode(r, 0);
      expect(r.stdout).to.match(/Paused queue mail: running tasks finish; no worker claims more from it/);
      r = await cli('queues', 'pause', 'mail');
      expectCode(r, 0);
      expect(r.stdout).to.match(/Queue mail was already paused/);
      r = await cli('queues', 'set', 'mail', '--concurrency', '5', '--rate', '50/2');
      expectCode(r, 0);
      expect(r.stdout.trim()).to.equal('Queue mail: concurrency 5, rate 50/2s.');
      r = await cli('queues', 'set', 'api', '--rate', '100/1m', '--rate-per-key');
      expectCode(r, 0);
      expect(r.stdout.trim()).to.equal('Queue api: concurrency unlimited, rate 100/60s per key.');

      r = await cli('queues');
      expectCode(r, 0);
      const lines = r.stdout.trim().split('\n').map((l) => l.split(/\s{2,}/));
      expect(lines).to.deep.equal([
        ['QUEUE', 'STATE', 'CONCURRENCY', 'RATE', 'READY', 'RUNNING', 'SUCCESSFUL', 'FAILED'],
        ['-', 'running', '-', '-', '1', '0', '0', '0'],
        ['api', 'running', '-', '100/60s per key', '0', '0', '0', '0'],
        ['mail', 'paused', '5', '50/2s', '2', '0', '0', '0'],
      ]);
      r = await cli('queues', '--json');
      expect(JSON.parse(r.stdout)).to.deep.equal([
        { name: null, paused: false, concurrency: null, rateLimit: null, counts: { READY: 1, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 } },
        { name: 'api', paused: false, concurrency: null, rateLimit: { limit: 100, period: 60, perKey: true }, counts: { READY: 0, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 } },
        { name: 'mail', paused: true, concurrency: 5, rateLimit: { limit: 50, period: 2 }, counts: { READY: 2, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 } },
      ]);

      expectCode(await cli('queues', 'resume', 'mail'), 0);
      r = await cli('queues', 'resume', 'mail');
      expect(r.stdout).to.match(/Queue mail was not paused/);
      r = await cli('queues', 'set', 'mail', '--concurrency', 'none', '--rate', 'none');
      expect(r.stdout.trim()).to.equal('Queue mail: concurrency unlimited, rate unlimited.');
      await store.knex(store.tables.tasks).del();
      await store.knex(store.tables.queues).del();
    });

    it('queues pause accepts a queue nobody used yet (it pauses its future tasks)', async () => {
      const r = await cli('queues', 'pause', 'not-yet-used');
      expectCode(r, 0);
      expect(await queueRows()).to.deep.equal([{ name: 'not-yet-used', paused: t.name === 'postgres' ? true : 1, concurrency: null, rate_limit: null }]);
      await store.knex(store.tables.queues).del();
    });

    it('queues pause, resume and set read --database and --table-prefix (given before or after the subcommand)', async () => {
      const flagsEnv = { ...env, BGTASKS_DATABASE_URL: undefined, BGTASKS_TABLE_PREFIX: undefined } as unknown as Record<string, string>;
      const db = ['--database', t.url(project), '--table-prefix', t.prefix];
      let r = await runCli(['queues', 'pause', 'flagged', ...db], project.dir, flagsEnv);
      expectCode(r, 0);
      r = await runCli(['queues', ...db, 'set', 'flagged', '--concurrency', '2'], project.dir, flagsEnv);
      expectCode(r, 0);
      expect(await queueRows()).to.deep.equal([{ name: 'flagged', paused: t.name === 'postgres' ? true : 1, concurrency: 2, rate_limit: null }]);
      // A prefix with no tables: the command says so (it read the flag).
      r = await runCli(['queues', 'resume', 'flagged', '--database', t.url(project), '--table-prefix', 'nothing_here_'], project.dir, flagsEnv);
      expectCode(r, 3);
      expect(r.stderr).to.match(/table prefix "nothing_here_"/);
      await store.knex(store.tables.queues).del();
    });

    it('queues set with a bad value exits 2 naming it, and stores nothing', async () => {
      // A few of each kind (policy/flow's unit tests read every rule; here: the exit code, the
      // message on stderr, and that nothing is stored).
      const bad: Array<[string[], RegExp]> = [
        [['--concurrency', '0'], /Invalid --concurrency: 0 — expected a whole number of tasks >= 1/],
        [['--concurrency', '1.5'], /Invalid --concurrency: 1\.5 — expected a whole number/],
        [['--concurrency', 'abc'], /Invalid --concurrency: "abc" — expected a whole number of tasks >= 1, or none/],
        [['--rate', '5/0'], /Invalid --rate: "5\/0" — expected LIMIT\/SECONDS with LIMIT a whole number >= 1 and SECONDS > 0/],
        [['--rate', '0/5'], /Invalid --rate: "0\/5" — expected LIMIT\/SECONDS with LIMIT a whole number >= 1/],
        [['--rate-per-key'], /Invalid --rate-per-key: it qualifies --rate — give --rate LIMIT\/SECONDS with it/],
        [['--concurrency', '3', '--rate', 'fast'], /Invalid --rate: "fast" — expected LIMIT\/SECONDS/],
        [[], /Nothing to set/],
      ];
      for (const [flags, message] of bad) {
        const r = await cli('queues', 'set', 'mail', ...flags);
        expectCode(r, 2);
        expect(r.stderr, flags.join(' ')).to.match(message);
      }
      for (const args of [['pause', ''], ['resume', ''], ['set', 'x'.repeat(191), '--concurrency', '2']]) {
        const r = await cli('queues', ...args);
        expectCode(r, 2);
        // Named as typed (`queues pause`), not as the API function behind it.
        const verb = { pause: 'paused', resume: 'resumed', set: 'limited' }[args[0] as 'pause' | 'resume' | 'set'];
        expect(r.stderr).to.match(new RegExp(`^bgtasks: Invalid queue name "x*" for queues ${args[0]} — expected 1 to 190 characters \\(tasks without a queue cannot be ${verb}: give them a queue\\)\\n$`));
      }
      expectCode(await cli('queues', 'pause'), 2);
      const r = await cli('queues', 'bogus');
      expectCode(r, 2);
      expect(r.stderr).to.equal("bgtasks: unknown command 'queues bogus' — expected queues, queues pause NAME, queues resume NAME or queues set NAME\n");
      expect(await queueRows()).to.deep.equal([]);
    });

    it('process-tasks --duration does not claim a task whose maxRunTime does not fit; --no-run-budget does', async () => {
      const now = Date.now();
      const args = JSON.stringify([9]);
      const [id] = await store.insertTasks([plainTask({ name: 'hold', args, hash: taskHash('hold', args), runAt: now, enqueuedAt: now, queue: 'budget', maxRunTime: 120 })]);
      writeFileSync(release, '');
      let r = await cli('process-tasks', '--batch', '--duration', '60', '--grace', '10', '--no-startup-delay', '--sleep', '0.05');
      expectCode(r, 0);
      expect(await store.findPending(id!)).to.include({ attempts: 0, lockedBy: null });
      r = await cli('process-tasks', '--batch', '--duration', '60', '--grace', '10', '--no-startup-delay', '--sleep', '0.05', '--no-run-budget');
      expectCode(r, 0);
      expect(await store.findPending(id!)).to.equal(null);
    });

    it('why: exit 0 when running or runnable, 1 when held back, 2 for an unknown id; workers lists the live worker and, with --all, the stopped one', async () => {
      let r = await cli('why', '999999999');
      expectCode(r, 2);
      expect(r.stderr).to.match(/999999999/);
      expectCode(await cli('why', 'abc'), 2);

      rmSync(release, { force: true });
      const first = await insert('hold', 1, 'work');
      const second = await insert('hold', 2, 'work');
      // No worker yet: held back.
      r = await cli('why', second);
      expectCode(r, 1);
      expect(r.stdout).to.match(new RegExp(`Task hold #${second} is READY and is held back\\.`));
      expect(r.stdout).to.match(/no live worker runs hold from queue work/);

      const w = startCli(['process-tasks', '--no-startup-delay', '--concurrency', '1', '--prefetch', '0', '--sleep', '0.05', '--worker-id', `why-${t.name}`], project.dir, env);
      children.push(w);
      try {
        await waitUntil(async () => ((await store.findPending(first)) ?? { lockedBy: null }).lockedBy !== null, 'the worker to claim the first task', 20_000, 20);
        r = await cli('why', first);
        expectCode(r, 0);
        expect(r.stdout).to.match(new RegExp(`Task hold #${first} is RUNNING\\.\\n- it is running on worker why-${t.name} since `));
        r = await cli('why', second, '--json');
        expectCode(r, 0);
        const a = JSON.parse(r.stdout) as { id: string; runnable: boolean; status: string; reasons: unknown[] };
        expect(a).to.deep.equal({ id: second, name: 'hold', status: 'READY', runnable: true, reasons: [] });
        r = await cli('why', second);
        expect(r.stdout).to.match(/can run now\.\n- nothing holds it back/);

        expectCode(await cli('queues', 'pause', 'work'), 0);
        r = await cli('why', second, '--json');
        expectCode(r, 1);
        expect((JSON.parse(r.stdout) as { reasons: Array<{ code: string }> }).reasons.map((x) => x.code)).to.deep.equal(['queue-paused']);

        r = await cli('workers');
        expectCode(r, 0);
        const [header, row, ...rest] = r.stdout.trim().split('\n');
        expect(header!.split(/\s{2,}/)).to.deep.equal(['WORKER', 'STATE', 'PID', 'VERSION', 'QUEUES', 'CONCURRENCY', 'RUNNING', 'LAST HEARTBEAT']);
        expect(rest).to.deep.equal([]);
        expect(row).to.match(new RegExp(`^why-${t.name}\\s+alive\\s+${w.child.pid}\\s+\\S+\\s+all\\s+1\\s+#${first} hold \\(`));
        r = await cli('workers', '--json');
        const [j] = JSON.parse(r.stdout) as Array<{ id: string; state: string; running: Array<{ id: string }>; names: string[] }>;
        expect([j!.id, j!.state, j!.running.map((x) => x.id), j!.names]).to.deep.equal([`why-${t.name}`, 'alive', [first], ['hold']]);

        // health reads the same registry: one live worker, serving every queue.
        r = await cli('health', '--max-wait', '86400', '--min-workers', '1');
        expectCode(r, 0);
        // The queue `work` is paused (above): its waiting task is named, not counted.
        expect(r.stdout).to.match(/; 1 live worker\(s\) \(at least 1\); paused, not counted: work\n$/);
        r = await cli('health', '--max-wait', '0', '--min-workers', '1');
        expectCode(r, 0);
        expect(r.stdout).to.match(/^OK: no task is due /);
        r = await cli('health', '--max-wait', '86400', '--min-workers', '2');
        expectCode(r, 1);
        expect(r.stdout).to.equal('UNHEALTHY: 1 live worker(s), --min-workers is 2; paused, not counted: work\n');
        r = await cli('health', '--max-wait', '86400', '--min-workers', '1', '--queue', 'work,other', '--json');
        expectCode(r, 0);
        expect(JSON.parse(r.stdout)).to.deep.include({ workersAlive: 1, workersPerQueue: [{ queue: 'work', workers: 1 }, { queue: 'other', workers: 1 }], minWorkers: 1, pausedQueues: ['work'] });

        writeFileSync(release, 'x');
        await waitUntil(async () => (await store.findPending(first)) === null, 'the first task to finish', 20_000, 20);
      } finally {
        w.child.kill('SIGTERM');
        expect((await w.exited).code).to.equal(0);
      }
      r = await cli('workers');
      expectCode(r, 0);
      expect(r.stdout).to.match(/No live worker/);
      r = await cli('workers', '--all');
      expect(r.stdout).to.match(new RegExp(`why-${t.name}\\s+stopped\\s`));
      r = await cli('health', '--max-wait', '86400', '--min-workers', '1', '--queue', 'work');
      expectCode(r, 1);
      expect(r.stdout).to.equal('UNHEALTHY: 0 live worker(s) serve queue work, --min-workers is 1; paused, not counted: work\n');
      r = await cli('health', '--max-wait', '86400', '--min-workers', '0');
      expectCode(r, 2);
      expect(r.stderr).to.match(/--min-workers/);
      r = await cli('why', first);
      expectCode(r, 1);
      expect(r.stdout).to.match(new RegExp(`^Task hold #${first} is SUCCESSFUL\\.\\n- it has finished: SUCCESSFUL at `));
    });
  });
}

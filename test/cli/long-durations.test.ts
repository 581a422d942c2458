/**
 * `--duration`, `--grace` and `--sleep` longer than Node's longest timer (2^31-1 ms, 24.8 days)
 * are waited in full: a plain setTimeout fired them after 1 ms, so the worker stopped at once,
 * a stop released running tasks at once, and an idle worker polled in a busy loop. Lock timeouts
 * whose derived timers would overflow are refused. The real compiled binary, on SQLite and, when
 * configured, MariaDB and PostgreSQL.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { killLeftovers, makeProject, startCli, type Project, type Spawned } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations, runMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import { readResult } from '../../core/api/results.js';
import type { Store } from '../../core/store/store.js';

const TASKS = `
import { existsSync } from 'node:fs';
import { background } from 'bgtasks';

/** Runs until the file \`gate\` exists, or until its signal aborts. */
export const gated = background({ name: 'gated', context: true }, async function gated(ctx: any, gate: string) {
  while (!existsSync(gate) && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
  if (ctx.signal.aborted) throw ctx.signal.reason;
  return 'opened';
});
`;

/** 30 days, in seconds: beyond 24.8 days. */
const MONTH = String(30 * 86_400);

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(f[11]) + Number(f[12])) / 100;
}

for (const t of cliTargets()) {
  describe(`process-tasks with durations beyond 24.8 days, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    const workers: Spawned[] = [];
    const worker = (...args: string[]) => {
      const w = startCli(['process-tasks', '--no-startup-delay', ...args], project.dir, t.env);
      workers.push(w);
      return w;
    };
    const started = (w: Spawned) => waitUntil(() => /INFO {2}worker started/.test(w.stdout()), 'the worker to start', 20_000);

    before(async () => {
      project = makeProject({ 'tasks.ts': TASKS });
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      await runMigrations(store.conn, t.prefix);
    });
    afterEach(() => killLeftovers(workers));
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project?.remove();
    });

    it('--duration of 30 days: the worker keeps running (it used to stop at once)', async () => {
      const w = worker('--duration', MONTH);
      await started(w);
      // Long enough for a 1 ms deadline to have stopped it many times over.
      await new Promise((r) => setTimeout(r, 1500));
      expect(w.child.exitCode, w.stdout()).to.equal(null);
      expect(w.stdout()).not.to.match(/worker stopped/);
      w.child.kill('SIGTERM');
      const r = await w.exited;
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/worker stopped .*reason=stopped/);
    });

    it('--sleep of 30 days: an idle worker sleeps (well under 0.3 s of CPU in a second; it used to busy-poll)', async () => {
      const w = worker('--sleep', MONTH);
      await started(w);
      // Its start-up work done, the liveness thread's included (it starts a second after the worker,
      // and loads the driver and connects: about 0.1 s of CPU, or more on a slow machine, that
      // fell into the measured second): its first beat has landed. SQLite has no beat.
      if (t.name !== 'sqlite') {
        const beaten = async () => ((await store.knex(store.tables.workers).whereNull('stopped_at').whereNotNull('alive_at').select('id')) as unknown[]).length > 0;
        await waitUntil(beaten, 'the liveness thread to beat', 20_000);
      }
      await new Promise((r) => setTimeout(r, 300));
      const before = cpuSeconds(w.child.pid!);
      await new Promise((r) => setTimeout(r, 1000));
      const used = cpuSeconds(w.child.pid!) - before;
      expect(used, `CPU seconds used while idle for 1 s`).to.be.below(0.3);
      w.child.kill('SIGTERM');
      expect((await w.exited).code).to.equal(0);
    });

    it('--grace of 30 days: after SIGTERM the running task keeps running (it used to be released at once) and finishes', async () => {
      const gate = path.join(project.dir, `gate-${t.name}`);
      const now = Date.now();
      const args = JSON.stringify([gate]);
      const [id] = (await store.insertTasks([plainTask({ name: 'gated', args, hash: taskHash('gated', args), runAt: now, enqueuedAt: now })])) as [string];
      // -v: a task's start is a debug line.
      const w = worker('--grace', MONTH, '-v');
      await waitUntil(() => new RegExp(`task started .*id=${id} name=gated`).test(w.stdout()), 'the gated task to start', 20_000);
      w.child.kill('SIGTERM');
      await waitUntil(() => /SIGTERM received: no new tasks/.test(w.stdout()), 'the worker to log the signal', 10_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(w.stdout()).not.to.match(/task released/);
      expect((await readResult(store, id)).status).to.equal('RUNNING');
      writeFileSync(gate, '');
      const r = await w.exited;
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(new RegExp(`task succeeded .*id=${id} name=gated`));
      expect((await readResult(store, id)).status).to.equal('SUCCESSFUL');
    });

    if (t.name === 'sqlite') {
      it('a --lock-timeout beyond 24.8 days is refused with exit 2 (its heartbeat and recovery timers would overflow)', async () => {
        // Bounded: a worker that accepted the value would run (and spin) until killed.
        const w = startCli(['process-tasks', '--batch', '--no-startup-delay', '--lock-timeout', '3000000'], project.dir, t.env);
        workers.push(w);
        const kill = setTimeout(() => w.child.kill('SIGKILL'), 15_000);
        const r = await w.exited;
        clearTimeout(kill);
        expect(r.code, r.stderr).to.equal(2);
        expect(r.stderr).to.equal('bgtasks: Invalid lockTimeout (from --lock-timeout): "3000000" — expected a finite number >= 1 and <= 2147483\n');
      });
    }
  });
}

/**
 * The launch recipes of docs/deployment.md under the signals their supervisors send, with the real
 * binary and a task running when the signal comes. Each must stop the worker gracefully (no new
 * claims, the running task finishes within --grace) and leave no process behind:
 * - the binary itself (systemd's ExecStart, a container's exec-form CMD): SIGTERM to it (systemd's
 *   KillMode=mixed, `docker stop`), SIGTERM to its whole group (systemd's default control-group),
 *   SIGINT to its group (Ctrl+C in a shell);
 * - the binary as PID 1 of its own PID namespace (a Kubernetes container), SIGTERM from outside;
 * - `npx bgtasks process-tasks` (crontab, a shell): SIGINT to the group (Ctrl+C: the worker hears
 *   it once), SIGTERM to the group, and SIGTERM to npm alone, which exits without passing it on.
 *   The worker used to run on, orphaned under PID 1; it now notices that its launcher is gone.
 * Signals and launchers do not depend on the database: the matrix runs on SQLite, and the npx
 * orphan case on every configured database.
 */
import { expect } from 'chai';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { childEnv, CLI, makeProject, type Project } from '../helpers/project.js';
import { cliTargets, type CliTarget } from '../helpers/record-project.js';
import { killTree, spawnTracked, skipUnless, unavailable, AVAILABLE, isRoot } from '../helpers/processes.js';
import { groupMembers, processTable } from '../helpers/leftovers.js';
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

/** npm's own chatter (update checks, funding notes) must not reach the network or the log. */
const QUIET_NPM = { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_offline: 'true' };
/** A process that no package manager started (systemd, a container runtime, a terminal). */
const NO_NPM = { npm_lifecycle_event: undefined, npm_config_user_agent: undefined, npm_command: undefined, npm_execpath: undefined };

type Recipe = 'binary' | 'npx' | 'pid1';
type Delivery = 'main' | 'group';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function unshareAvailable() {
  if (process.platform !== 'linux') return unavailable('PID namespaces need Linux');
  if (!isRoot()) return unavailable('unshare --pid needs root');
  const r = spawnSync('unshare', ['--pid', '--fork', 'true'], { timeout: 10_000 });
  return r.status === 0 ? AVAILABLE : unavailable(`unshare --pid --fork failed: ${String(r.stderr ?? r.error)}`);
}

function npxAvailable() {
  const r = spawnSync('npx', ['--version'], { timeout: 30_000, env: childEnv(QUIET_NPM) });
  return r.status === 0 ? AVAILABLE : unavailable('npx is not on PATH');
}

function suite(t: CliTarget, cases: Array<{ recipe: Recipe; signal: NodeJS.Signals; to: Delivery; expect: RegExp }>) {
  describe(`launch recipes and the signals their supervisors send, spawned [${t.name}]`, function () {
    this.timeout(90_000);
    let project: Project;
    let store: Store;
    let launched: ChildProcess | null = null;
    let n = 0;

    before(async () => {
      project = makeProject({ 'tasks.ts': TASKS });
      // As npm installs it: node_modules/.bin/bgtasks, an executable that runs the CLI in place.
      const bin = project.write('node_modules/.bin/bgtasks', `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
      chmodSync(bin, 0o755);
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      await runMigrations(store.conn, t.prefix);
    });
    afterEach(async () => {
      if (launched) await killTree(launched);
      launched = null;
    });
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project?.remove();
    });

    for (const c of cases) {
      const how = c.to === 'main' ? `SIGTERM`.replace('SIGTERM', c.signal) + ' to the main process' : `${c.signal} to the process group`;
      it(`${c.recipe === 'npx' ? 'npx bgtasks process-tasks' : c.recipe === 'pid1' ? 'the binary as PID 1 of a PID namespace' : 'the binary'}, ${how}: the running task finishes, the worker stops, nothing is left`, async function () {
        if (c.recipe === 'pid1') skipUnless(this, unshareAvailable(), 'the PID 1 recipe');
        if (c.recipe === 'npx') skipUnless(this, npxAvailable(), 'the npx recipe');
        const gate = path.join(project.dir, `gate-${++n}`);
        const log = path.join(project.dir, `launch-${n}.log`);
        const args = JSON.stringify([gate]);
        const now = Date.now();
        const [id] = (await store.insertTasks([plainTask({ name: 'gated', args, hash: taskHash('gated', args), runAt: now, enqueuedAt: now })])) as [string];

        // -v: a task's start is a debug line.
        const worker = ['process-tasks', '--no-startup-delay', '--sleep', '0.2', '--grace', '60', '-v'];
        const bin = path.join(project.dir, 'node_modules', '.bin', 'bgtasks');
        const [cmd, cmdArgs, env]: [string, string[], Record<string, string | undefined>] =
          c.recipe === 'npx'
            ? ['npx', ['bgtasks', ...worker], { ...QUIET_NPM }]
            : c.recipe === 'pid1'
              ? ['unshare', ['--pid', '--fork', '--kill-child', bin, ...worker], NO_NPM]
              : [bin, worker, NO_NPM];
        launched = spawnTracked(cmd, cmdArgs, { cwd: project.dir, env: childEnv({ ...t.env, ...env }), logFile: log });
        const main = launched.pid!;
        const output = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
        await waitUntil(() => new RegExp(`task started .*id=${id} name=gated`).test(output()), 'the gated task to start', 30_000);
        // The worker's own pid: in its log, except as PID 1 of a namespace (its parent is unshare).
        const workerPid = c.recipe === 'pid1' ? processTable().find((p) => p.ppid === main)!.pid : Number(/worker=[^:\s]+:(\d+):/.exec(output())![1]);
        expect(alive(workerPid)).to.equal(true);

        if (c.to === 'group') process.kill(-main, c.signal);
        else process.kill(c.recipe === 'pid1' ? workerPid : main, c.signal);

        await waitUntil(() => c.expect.test(output()), `the worker to announce its stop (${c.expect})`, 15_000);
        // Graceful: the task is still running, the worker waits for it.
        expect(alive(workerPid), output()).to.equal(true);
        expect((await readResult(store, id)).status).to.equal('RUNNING');
        writeFileSync(gate, '');
        await waitUntil(() => !alive(workerPid), 'the worker to exit', 30_000);
        const res = await readResult(store, id);
        expect(res.status, output()).to.equal('SUCCESSFUL');
        expect(output()).to.match(/worker stopped .*reason=stopped ran=1 succeeded=1/);
        expect(output()).not.to.match(/received again|uncaught|Error/);
        await waitUntil(() => groupMembers(main).length === 0, 'every process of the launch to be gone', 15_000);
      });
    }
  });
}

describe('npx bgtasks process-tasks --dev, SIGTERM to npm alone, spawned [sqlite]', function () {
  this.timeout(90_000);
  it('the supervisor sees its launcher gone and stops its worker gracefully; nothing is left', async function () {
    skipUnless(this, npxAvailable(), 'the npx recipe');
    const project = makeProject({ 'tasks.ts': TASKS });
    let launched: ChildProcess | null = null;
    try {
      const bin = project.write('node_modules/.bin/bgtasks', `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
      chmodSync(bin, 0o755);
      const log = path.join(project.dir, 'dev.log');
      const output = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
      expect(spawnSync(bin, ['migrate'], { cwd: project.dir, env: childEnv(NO_NPM) }).status).to.equal(0);
      launched = spawnTracked('npx', ['bgtasks', 'process-tasks', '--dev', '--no-startup-delay', '--sleep', '0.2'], { cwd: project.dir, env: childEnv(QUIET_NPM), logFile: log });
      await waitUntil(() => /worker started/.test(output()), 'the worker to start', 30_000);
      // The worker runs in a process group of its own (see dev.ts): followed by its pid.
      const workerPid = Number(/worker=[^:\s]+:(\d+):/.exec(output())![1]);
      process.kill(launched.pid!, 'SIGTERM');
      await waitUntil(() => /DEV {3}npx \(its process \d+\) exited without stopping the supervisor; stopping the worker/.test(output()), 'the supervisor to notice', 15_000);
      await waitUntil(() => /worker stopped .*reason=stopped/.test(output()), 'the worker to stop', 30_000);
      const main = launched.pid!;
      await waitUntil(() => groupMembers(main).length === 0 && !alive(workerPid), 'every process of the launch to be gone', 15_000);
    } finally {
      if (launched) await killTree(launched);
      project.remove();
    }
  });
});

const SIGNALLED = (sig: string) => new RegExp(`WARN {2}${sig} received: no new tasks`);
const ORPHANED = /WARN {2}npx \(its process \d+\) exited without stopping this worker: no new tasks/;

for (const t of cliTargets()) {
  if (t.name === 'sqlite') {
    suite(t, [
      { recipe: 'binary', signal: 'SIGTERM', to: 'main', expect: SIGNALLED('SIGTERM') },
      { recipe: 'binary', signal: 'SIGTERM', to: 'group', expect: SIGNALLED('SIGTERM') },
      { recipe: 'binary', signal: 'SIGINT', to: 'group', expect: SIGNALLED('SIGINT') },
      { recipe: 'pid1', signal: 'SIGTERM', to: 'main', expect: SIGNALLED('SIGTERM') },
      { recipe: 'npx', signal: 'SIGINT', to: 'group', expect: SIGNALLED('SIGINT') },
      { recipe: 'npx', signal: 'SIGTERM', to: 'group', expect: SIGNALLED('SIGTERM') },
      { recipe: 'npx', signal: 'SIGTERM', to: 'main', expect: ORPHANED },
    ]);
  } else {
    suite(t, [{ recipe: 'npx', signal: 'SIGTERM', to: 'main', expect: ORPHANED }]);
  }
}

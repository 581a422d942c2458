/**
 * `process-tasks --dev`, spawned: a change to a task file restarts the worker with the new code
 * (a running task finishes on the old code first); a task file that fails to import is shown, and
 * fixing it recovers without a manual restart. On SQLite and the configured server databases.
 */
import { expect } from 'chai';
import { waitUntil } from '../helpers/databases.js';
import { makeProject, runCli, spawnNode, startCli, TSX_LOADER, type Project, type Spawned } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { settingsFor } from '../helpers/databases.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import type { Store } from '../../core/store/store.js';

const version = (v: string) => `
import { background } from 'bgtasks';
export const whichVersion = background(function whichVersion() {
  return '${v}';
});
`;

const RUN = `
import { closeConnections, waitFor } from 'bgtasks';
import { whichVersion } from './tasks.js';
const ref = await whichVersion();
const r = await waitFor(ref, { timeout: 20, interval: 0.05 });
process.stdout.write(String(r.returnValue) + '\\n');
await closeConnections();
process.exit(0);
`;

const SLOW = `
import { background } from 'bgtasks';
export const whichVersion = background(async function whichVersion() {
  await new Promise((r) => setTimeout(r, 1500));
  return 'slow';
});
`;

/**
 * A --dev supervisor in its own process group (like a shell's foreground job: kill(-pid) reaches
 * everything in it) whose worker is running the slow task when `signal` is called; resolves with
 * the supervisor's output and the task's result once both have ended.
 */
async function signalWhileSlowTaskRuns(signal: (dev: ReturnType<typeof startCli>) => void): Promise<{ code: number | null; stdout: string; result: string }> {
  const project = makeProject({ 'tasks.ts': SLOW, 'run.ts': RUN });
  try {
    expect((await runCli(['migrate'], project.dir)).code).to.equal(0);
    // -v: a task's start is a debug line.
    const dev = startCli(['process-tasks', '--dev', '--sleep', '0.05', '--no-startup-delay', '--grace', '20', '-v'], project.dir, {}, true);
    await waitUntil(() => /worker started/.test(dev.stdout()), 'the worker to start', 20_000);
    const run = spawnNode(['--import', TSX_LOADER, 'run.ts'], project.dir);
    await waitUntil(() => /task started/.test(dev.stdout()), 'the slow task to start', 20_000);
    signal(dev);
    const r = await dev.exited;
    return { code: r.code, stdout: r.stdout, result: (await run.exited).stdout.trim() };
  } finally {
    project.remove();
  }
}

describe('process-tasks --dev and Ctrl+C, spawned', function () {
  this.timeout(60_000);
  it('hands the worker one SIGINT (not two) when Ctrl+C signals the whole terminal group, so running tasks get their grace', async () => {
    const r = await signalWhileSlowTaskRuns((dev) => process.kill(-dev.child.pid!, 'SIGINT'));
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/task succeeded/);
    expect(r.stdout).not.to.match(/received again/);
    expect(r.result).to.equal('slow');
  });

  it('stops the worker gracefully when the terminal closes (SIGHUP to the supervisor): the running task finishes', async () => {
    // Only the supervisor: the worker has a process group (and session) of its own.
    const r = await signalWhileSlowTaskRuns((dev) => dev.child.kill('SIGHUP'));
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/SIGHUP received; stopping the worker/);
    expect(r.stdout).to.match(/SIGTERM received \(under --dev: a reload or a stop\)/);
    expect(r.stdout).to.match(/task succeeded/);
    expect(r.result).to.equal('slow');
  });
});

describe('process-tasks --dev --duration, spawned', function () {
  this.timeout(60_000);
  it('says the duration is up when it stops the worker, not that a signal came', async () => {
    const project = makeProject({ 'tasks.ts': version('v1') });
    try {
      expect((await runCli(['migrate'], project.dir)).code).to.equal(0);
      const r = await runCli(['process-tasks', '--dev', '--duration', '1', '--sleep', '0.05', '--no-startup-delay'], project.dir);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/--duration 1 s is up; stopping the worker/);
      expect(r.stdout).not.to.match(/DEV .*received/);
    } finally {
      project.remove();
    }
  });
});

describe('process-tasks --dev when the supervisor is killed outright, spawned', function () {
  this.timeout(60_000);
  it('stops the worker instead of leaving it running on its own', async () => {
    const project = makeProject({ 'tasks.ts': version('v1') });
    try {
      expect((await runCli(['migrate'], project.dir)).code).to.equal(0);
      const dev = startCli(['process-tasks', '--dev', '--sleep', '0.05', '--no-startup-delay'], project.dir, {}, true);
      await waitUntil(() => /worker started/.test(dev.stdout()), 'the worker to start', 20_000);
      const workerPid = Number(/worker=[^:\s]+:(\d+):/.exec(dev.stdout())![1]);
      expect(workerPid).to.not.equal(dev.child.pid);
      dev.child.kill('SIGKILL');
      await dev.exited;
      const alive = () => {
        try {
          process.kill(workerPid, 0);
          return true;
        } catch {
          return false;
        }
      };
      await waitUntil(() => !alive(), 'the orphaned worker to stop', 15_000);
    } finally {
      project.remove();
    }
  });
});

for (const t of cliTargets()) {
  describe(`process-tasks --dev, spawned [${t.name}]`, function () {
    this.timeout(90_000);
    let project: Project;
    let dev: Spawned | null = null;
    let store: Store | undefined;

    const runTask = async () => {
      const r = await spawnNode(['--import', TSX_LOADER, 'run.ts'], project.dir, t.env).exited;
      expect(r.code, r.stderr).to.equal(0);
      return r.stdout.trim();
    };
    const started = () => (dev!.stdout().match(/worker started/g) ?? []).length;

    beforeEach(async () => {
      project = makeProject({ 'tasks.ts': version('v1'), 'run.ts': RUN });
      expect((await runCli(['migrate'], project.dir, t.env)).code).to.equal(0);
      // -v: a task's start is a debug line.
      dev = startCli(['process-tasks', '--dev', '--sleep', '0.05', '--no-startup-delay', '--grace', '5', '-v'], project.dir, t.env);
      await waitUntil(() => started() === 1, 'the first worker to start', 20_000);
    });
    afterEach(async () => {
      if (dev && dev.child.exitCode === null) {
        dev.child.kill('SIGTERM');
        const r = await dev.exited;
        expect(r.code).to.equal(0);
      }
      if (t.name !== 'sqlite') {
        store ??= await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
        await store.knex(store.tables.tasks).del();
      }
      project.remove();
    });
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
    });

    it('restarts the worker with the new code when a task file changes, saying what changed', async () => {
      expect(await runTask()).to.equal('v1');
      project.write('tasks.ts', version('v2'));
      await waitUntil(() => started() === 2, 'the worker to restart', 20_000);
      expect(dev!.stdout()).to.match(/changed: tasks\.ts; restarting the worker/);
      // The reload is no warning: the worker says who stopped it, at info.
      expect(dev!.stdout()).to.match(/INFO {2}SIGTERM received \(under --dev: a reload or a stop\): no new tasks/);
      expect(dev!.stdout()).not.to.match(/WARN {2}SIGTERM received/);
      expect(await runTask()).to.equal('v2');
    });

    it('lets a task that is running when a file changes finish on the old code, then starts the new code', async () => {
      project.write('tasks.ts', SLOW);
      await waitUntil(() => started() === 2, 'the worker with the slow task to start', 20_000);
      const slowRun = runTask();
      await waitUntil(() => /task started .*name=whichVersion/.test(dev!.stdout().split('worker started').at(-1)!), 'the slow task to start', 20_000);
      project.write('tasks.ts', version('v4'));
      // Released and re-run by the new code, it would return 'v4'.
      expect(await slowRun).to.equal('slow');
      await waitUntil(() => started() === 3, 'the new code to start', 20_000);
      expect(await runTask()).to.equal('v4');
    });

    it('shows an import error, keeps watching, and recovers when the file is fixed', async () => {
      project.write('tasks.ts', `import { background } from 'bgtasks';\nexport const whichVersion = background(function whichVersion( {\n`);
      await waitUntil(() => /the worker exited \(code 1\); fix the error/.test(dev!.stdout()), 'the broken worker to exit', 20_000);
      expect(dev!.stderr()).to.match(/Cannot import task file .*tasks\.ts/);
      expect(dev!.child.exitCode).to.equal(null);
      project.write('tasks.ts', version('v3'));
      await waitUntil(() => started() === 2, 'the fixed worker to start', 20_000);
      expect(await runTask()).to.equal('v3');
    });

    it('does not restart for changes in node_modules or the database file', async () => {
      project.write('node_modules/some-lib/index.js', 'module.exports = 1;\n');
      // A task run writes the database (on SQLite, the file in the project).
      expect(await runTask()).to.equal('v1');
      // Then a watched file: the first change the supervisor reports must be this one alone.
      project.write('other.ts', 'export const x = 1;\n');
      await waitUntil(() => /changed: /.test(dev!.stdout()), 'the supervisor to report a change', 20_000);
      expect(dev!.stdout().match(/changed: (.*); restarting/)![1]).to.equal('other.ts');
    });
  });
}

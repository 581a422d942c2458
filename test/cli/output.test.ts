/**
 * What a command prints reaches its reader whatever the reader does: a slow reader gets all of a
 * `list --json` far larger than a pipe holds (64 KiB), and a reader that closes the pipe early
 * (`| head`) ends the command quietly with exit 0. The real compiled binary, on SQLite and, when
 * configured, MariaDB and PostgreSQL.
 */
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { settingsFor } from '../helpers/databases.js';
import { childEnv, CLI, makeProject, type Project } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations, runMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import type { Store } from '../../core/store/store.js';

const TASKS = `
import { background } from 'bgtasks';
export const record = background(async function record(n: number, pad: string) { return n; });
`;

const ROWS = 400;
const PAD = 'x'.repeat(1500);

interface Read {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bgtasks <args>` with a reader that reads nothing until the command has exited or
 * `holdMs` passed. The command cannot finish writing before the reader starts: if it exits
 * meanwhile, it exited with output still unwritten.
 */
function runWithSlowReader(args: string[], cwd: string, env: Record<string, string>, holdMs: number): Promise<Read> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pause();
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const startReading = () => {
      clearTimeout(hold);
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stdout.resume();
    };
    const hold = setTimeout(startReading, holdMs);
    child.once('exit', startReading);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs `bgtasks <args>` with a reader that closes the pipe after its first chunk (`| head -c`). */
function runWithEarlyClose(args: string[], cwd: string, env: Record<string, string>): Promise<Read & { firstChunk: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let firstChunk = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', (d: Buffer) => {
      firstChunk = d.toString();
      child.stdout.destroy();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout: '', stderr, firstChunk }));
  });
}

for (const t of cliTargets()) {
  describe(`command output reaches slow and early-closing readers, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    let bigId: string;

    before(async function () {
      this.timeout(120_000);
      project = makeProject({ 'tasks.ts': TASKS });
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      await runMigrations(store.conn, t.prefix);
      const now = Date.now();
      const row = (n: number, pad: string) => {
        const args = JSON.stringify([n, pad]);
        return plainTask({ name: 'record', args, hash: taskHash('record', args), queue: null, priority: 0, runAt: now + 3_600_000, enqueuedAt: now });
      };
      await store.insertTasks(Array.from({ length: ROWS }, (_, i) => row(i, PAD)));
      [bigId] = (await store.insertTasks([row(-1, 'y'.repeat(300_000))])) as [string];
    });
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project?.remove();
    });

    it('list --json of ~600 KiB piped to a slow reader arrives whole (every row, valid JSON) and exits 0', async () => {
      const r = await runWithSlowReader(['list', '--json', '--limit', String(ROWS + 10)], project.dir, t.env, 2000);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.length).to.be.greaterThan(ROWS * PAD.length);
      const list = JSON.parse(r.stdout) as Array<{ id: string; args: unknown[] }>;
      expect(list).to.have.length(ROWS + 1);
      expect(list.filter((e) => e.args[1] === PAD)).to.have.length(ROWS);
      expect(r.stderr).to.equal('');
    });

    it('show ID of a task with 300 KB of arguments, its reader closing after the first chunk (| head): exit 0, nothing on stderr', async () => {
      const r = await runWithEarlyClose(['show', bigId], project.dir, t.env);
      expect(r.firstChunk).to.match(new RegExp(`^Task #${bigId}\\s+record`));
      expect({ code: r.code, signal: r.signal, stderr: r.stderr }).to.deep.equal({ code: 0, signal: null, stderr: '' });
    });

    if (t.name === 'sqlite') {
      it('a worker whose reader closes its standard output stops gracefully at its next log line: exit 0, one line on stderr', async () => {
        const child = spawn(process.execPath, [CLI, 'process-tasks', '--no-startup-delay', '--sleep', '0.1'], { cwd: project.dir, env: childEnv(t.env), stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
        let seen = '';
        await new Promise<void>((resolve) => {
          const onData = (d: Buffer) => {
            seen += d.toString();
            if (!/worker started/.test(seen)) return;
            child.stdout.off('data', onData);
            child.stdout.destroy();
            resolve();
          };
          child.stdout.on('data', onData);
        });
        // The next log line (this task's) finds the pipe closed.
        const now = Date.now();
        const args = JSON.stringify([1, 'p']);
        await store.insertTasks([plainTask({ name: 'record', args, hash: taskHash('record', args), runAt: now, enqueuedAt: now })]);
        const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
        const r = await exited;
        clearTimeout(kill);
        expect(r).to.deep.equal({ code: 0, signal: null });
        expect(stderr).to.equal('bgtasks: standard output was closed by its reader; stopping the worker (running tasks get --grace seconds)\n');
      });
    }

    it('list --json, its reader closing after the first chunk: exit 0, nothing on stderr', async () => {
      const r = await runWithEarlyClose(['list', '--json', '--limit', String(ROWS + 10)], project.dir, t.env);
      expect(r.firstChunk.startsWith('[{')).to.equal(true);
      expect({ code: r.code, signal: r.signal, stderr: r.stderr }).to.deep.equal({ code: 0, signal: null, stderr: '' });
    });
  });
}

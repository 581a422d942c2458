/**
 * process-tasks as cron and operators use it, spawned: --duration and --grace, overlapping cron
 * launches, --max-tasks, JSON logs, --log-std, bad flags, task files that fail to import, and an
 * unreachable database. On SQLite, and on MariaDB/PostgreSQL when configured.
 */
import { expect } from 'chai';
import path from 'node:path';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { makeProject, runCli, spawnNode, startCli, TSX_LOADER, type Project, type Spawned } from '../helpers/project.js';
import { cliTargets, ranLines } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { configure, resetConfiguration } from '../../core/config/settings.js';
import { getResult } from '../../core/api/results.js';
import type { Store } from '../../core/store/store.js';

const TASKS = `
import { appendFileSync } from 'node:fs';
import { background } from 'bgtasks';

export const record = background(async function record(n: number) {
  appendFileSync(process.env.RUN_LOG!, n + ' ' + process.pid + '\\n');
  await new Promise((r) => setTimeout(r, 5));
  return n;
});

export const sleepy = background(async function sleepy(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
});

export const chatty = background({ context: true }, async function chatty(ctx, tag: string) {
  for (let i = 0; i < 5; i++) {
    console.log('line ' + i + ' of ' + tag);
    if (i === 2) process.stderr.write('warning from ' + tag + '\\n');
    await new Promise((r) => setTimeout(r, 3));
  }
  process.stdout.write('no newline from ' + tag);
});
`;

const ENQUEUE = `
import { closeConnections } from 'bgtasks';
import * as tasks from './tasks.js';
const [name, ...rest] = process.argv.slice(2);
const ids = [];
for (const a of rest) ids.push((await (tasks as any)[name](JSON.parse(a))).id);
process.stdout.write(ids.join(',') + '\\n');
await closeConnections();
process.exit(0);
`;

for (const t of cliTargets()) {
  describe(`process-tasks for cron and operators, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    let env: Record<string, string>;
    let runLog: string;
    const children: Spawned[] = [];

    const enqueue = async (name: string, ...args: unknown[]) => {
      const r = await spawnNode(['--import', TSX_LOADER, 'enqueue.ts', name, ...args.map((a) => JSON.stringify(a))], project.dir, env).exited;
      expect(r.code, r.stderr).to.equal(0);
      return r.stdout.trim().split(',');
    };
    const count = async (table: string) => Number(((await store.knex(table).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);

    before(async () => {
      project = makeProject({ 'tasks.ts': TASKS, 'enqueue.ts': ENQUEUE });
      runLog = path.join(project.dir, 'ran.log');
      env = { ...t.env, RUN_LOG: runLog };
      expect((await runCli(['migrate'], project.dir, env)).code).to.equal(0);
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      configure({ database: t.url(project), tablePrefix: t.prefix });
    });
    beforeEach(async () => {
      await store.knex(store.tables.tasks).del();
      await store.knex(store.tables.completed).del();
    });
    afterEach(async () => {
      for (const c of children.splice(0)) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    });
    after(async () => {
      await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      resetConfiguration();
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('--duration stops claiming; a task still running after --grace is aborted and recorded as a failed attempt', async () => {
      const [id] = await enqueue('sleepy', 20_000);
      const started = Date.now();
      const r = await runCli(['process-tasks', '--duration', '1', '--grace', '1', '--sleep', '0.1', '--no-startup-delay'], project.dir, env);
      expect(r.code, r.stderr).to.equal(0);
      // Duration 1 s + grace 1 s + the CLI's start and exit on a loaded 2-core machine; the task
      // itself would run 20 s, so this still proves it was aborted.
      expect((Date.now() - started) / 1000).to.be.lessThan(1 + 1 + 6);
      const res = await getResult(id!);
      expect(res.status).to.equal('READY');
      expect(res.attempts).to.equal(1);
      expect(res.errors[0]!.exceptionClass).to.equal('WorkerStoppedError');
      expect(res.errors[0]!.message).to.match(/--duration limit plus --grace/);
      expect(res.runAt.getTime()).to.be.greaterThan(Date.now());
    });

    it('overlapping cron launches run every task exactly once', async () => {
      const nums = Array.from({ length: 200 }, (_, i) => i + 1);
      await enqueue('record', ...nums);
      const args = ['process-tasks', '--duration', '4', '--sleep', '0.05', '--no-startup-delay'];
      const a = startCli(args, project.dir, env);
      children.push(a);
      await waitUntil(() => ranLines(runLog).length > 10, 'the first launch to run tasks');
      const b = startCli(args, project.dir, env);
      children.push(b);
      const [ra, rb] = await Promise.all([a.exited, b.exited]);
      expect([ra.code, rb.code]).to.deep.equal([0, 0]);
      const seen = ranLines(runLog).map((l) => Number(l.split(' ')[0]));
      expect(seen.slice().sort((x, y) => x - y)).to.deep.equal(nums);
      expect(await count(store.tables.completed)).to.equal(200);
    });

    it('--max-tasks N exits after N tasks', async () => {
      await enqueue('record', 1001, 1002, 1003, 1004, 1005, 1006);
      const r = await runCli(['process-tasks', '--max-tasks', '4', '--sleep', '0.05', '--no-startup-delay'], project.dir, env);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/reason=max-tasks/);
      expect(await count(store.tables.completed)).to.equal(4);
      expect(await count(store.tables.tasks)).to.equal(2);
    });

    it('--log-format json writes one JSON object per line with the task fields', async () => {
      const [id] = await enqueue('record', 7);
      const r = await runCli(['process-tasks', '--batch', '--no-startup-delay', '--log-format', 'json'], project.dir, env);
      expect(r.code).to.equal(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const done = lines.find((l) => l.msg === 'task succeeded')!;
      expect(done).to.include({ level: 'info', id, name: 'record', attempt: 1, outcome: 'succeeded' });
      expect(done.queue).to.equal(null);
      expect(done.worker).to.be.a('string');
      expect(done.duration_ms).to.be.a('number');
      expect(Date.parse(done.time as string)).to.be.greaterThan(0);
    });

    it('--log-std turns task output into log lines tagged with that task, even with tasks running at once', async () => {
      const ids = await enqueue('chatty', 'A', 'B', 'C');
      const r = await runCli(['process-tasks', '--batch', '--no-startup-delay', '--log-std', '--concurrency', '3', '--log-format', 'json'], project.dir, env);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.equal('');
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const tags = new Map(ids.map((id, i) => [id, 'ABC'[i]!]));
      const captured = lines.filter((l) => l.stream);
      expect(captured).to.have.length(3 * 7);
      for (const l of captured) {
        const tag = tags.get(String(l.id))!;
        expect(l.name).to.equal('chatty');
        expect(String(l.msg)).to.match(new RegExp(`(of|from) ${tag}$`));
        expect(l.level).to.equal(l.stream === 'stderr' ? 'warn' : 'info');
      }
    });
  });
}

describe('process-tasks usage errors, spawned', function () {
  this.timeout(30_000);
  let project: Project;
  before(() => {
    project = makeProject({ 'tasks.ts': TASKS });
  });
  after(() => project.remove());

  for (const [args, pattern] of [
    [['--sleep', '0'], /Invalid sleep \(from --sleep\): "0" — expected a finite number > 0/],
    [['--sleep', 'abc'], /Invalid sleep \(from --sleep\): "abc"/],
    [['--concurrency', '0'], /Invalid concurrency \(from --concurrency\): "0" — expected an integer >= 1/],
    [['--duration', '-1'], /Invalid --duration: "-1" — expected seconds >= 0/],
    [['--max-tasks', '1.5'], /Invalid --max-tasks: "1.5" — expected an integer >= 1/],
    [['--worker-id', ''], /Invalid --worker-id: "" — expected a non-empty worker id/],
    [['--worker-id', 'x'.repeat(65)], /Invalid --worker-id: .* — expected at most 64 characters/],
    [['--queue', 'a', '--exclude-queues', 'b'], /--exclude-queues.*cannot be combined with --queue/],
    [['--no-such-flag'], /unknown option '--no-such-flag' — run with --help for usage/],
    [['--bacth'], /unknown option '--bacth' \(Did you mean --batch\?\) — run with --help for usage/],
    [['--log-format', 'xml'], /argument 'xml' is invalid\. Allowed choices are human, json — run with --help for usage/],
    [['--lock-timeout', '2', '--heartbeat-interval', '5'], /Invalid --heartbeat-interval: 5 — expected fewer seconds than --lock-timeout \(2\)/],
  ] as Array<[string[], RegExp]>) {
    it(`rejects ${args.join(' ') || "''"} with exit 2 and one line naming the flag`, async () => {
      const r = await runCli(['process-tasks', ...args], project.dir);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(pattern);
      expect(r.stderr).to.match(/^bgtasks: [^\n]+\n$/);
    });
  }

  it('help of a command that does not exist exits 2 naming it; help of one that does exits 0', async () => {
    const r = await runCli(['help', 'nosuchcmd'], project.dir);
    expect([r.code, r.stderr, r.stdout]).to.deep.equal([2, "bgtasks: unknown command 'nosuchcmd' — run with --help for usage\n", '']);
    const ok = await runCli(['help', 'queues'], project.dir);
    expect(ok.code).to.equal(0);
    expect(ok.stdout).to.match(/^Usage: bgtasks queues /);
  });

  it('prints --help with examples and exits 0', async () => {
    const r = await runCli(['process-tasks', '--help'], project.dir);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/Examples:/);
    expect(r.stdout).to.match(/--duration <seconds>/);
    expect(r.stdout).to.match(/\nExit codes: 0 stopped as asked .*, 1 runtime failure .*, 2 usage error, 3 not migrated\.\n/);
  });

  for (const command of ['process-tasks', 'prune-results']) {
    it(`${command} --help states each default once, in the option's own words`, async () => {
      const r = await runCli([command, '--help'], project.dir);
      expect(r.code).to.equal(0);
      // Commander appends `(default: "…")` for a default value it holds; the texts say it already.
      expect(r.stdout).not.to.match(/\(default: "/);
      expect(r.stdout).to.match(command === 'process-tasks' ? /\(default\s+0: run until stopped\)/ : /\(default 30; 0 = all\)/);
    });
  }

  it('fails loudly (exit 1, the file and the error) when a task file cannot be imported', async () => {
    const p = makeProject({ 'tasks.ts': `import { background } from 'bgtasks';\nimport './missing-module.js';\nexport const t = background(function t() {});\n` });
    try {
      const r = await runCli(['process-tasks', '--batch', '--no-startup-delay'], p.dir);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include(path.join(p.dir, 'tasks.ts'));
      expect(r.stderr).to.match(/Cannot import task file .*missing-module/s);
    } finally {
      p.remove();
    }
  });

  it('fails when a task file registers no task, and when no task file is found', async () => {
    const p = makeProject({ 'tasks.ts': 'export const x = 1;\n' });
    try {
      const r = await runCli(['process-tasks', '--batch', '--no-startup-delay'], p.dir);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/registers no task/);
      const none = await runCli(['process-tasks', '--batch', '--no-startup-delay', '--task-files', 'nothing/**/*.ts'], p.dir);
      expect(none.code).to.equal(1);
      expect(none.stderr).to.match(/No task files found/);
    } finally {
      p.remove();
    }
  });

  it('reports an unreachable database with the URL’s password masked, exit 1', async () => {
    const r = await runCli(['process-tasks', '--batch', '--no-startup-delay'], project.dir, { BGTASKS_DATABASE_URL: 'postgres://app:s3cret@127.0.0.1:1/app' });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/Cannot connect to the database postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/app: connection to 127\.0\.0\.1:1 refused/);
    expect(r.stderr + r.stdout).not.to.include('s3cret');
  });

  it('applies configure() called in a task file to the worker (it ranks above the environment)', async () => {
    const p = makeProject({
      'tasks.ts': `import { background, configure } from 'bgtasks';\nconfigure({ maxAttempts: 1 });\nexport const fails = background(function fails() { throw new Error('no'); });\n`,
      'enqueue.ts': `import { fails } from './tasks.js';\nimport { closeConnections } from 'bgtasks';\nawait fails();\nawait closeConnections();\n`,
    });
    try {
      expect((await runCli(['migrate'], p.dir)).code).to.equal(0);
      expect((await spawnNode(['--import', TSX_LOADER, 'enqueue.ts'], p.dir).exited).code).to.equal(0);
      const r = await runCli(['process-tasks', '--batch', '--no-startup-delay'], p.dir, { BGTASKS_MAX_ATTEMPTS: '5' });
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/task failed for good/);
    } finally {
      p.remove();
    }
  });

  it('loads a tasks.ts of a CommonJS package (no "type": "module") as well as of an ESM one', async () => {
    const p = makeProject({
      'tasks.ts': `import { background } from 'bgtasks';\nexport const hello = background(function hello(n: number) { return n + 1; });\n`,
      'enqueue.ts': `import { hello } from './tasks.js';\nimport { closeConnections } from 'bgtasks';\nawait hello(41);\nawait closeConnections();\n`,
    });
    try {
      expect((await runCli(['migrate'], p.dir)).code).to.equal(0);
      expect((await spawnNode(['--import', TSX_LOADER, 'enqueue.ts'], p.dir).exited).code).to.equal(0);
      p.write('package.json', JSON.stringify({ name: 'cjs-app', private: true }));
      const r = await runCli(['process-tasks', '--batch', '--no-startup-delay'], p.dir);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/task succeeded.*name=hello/);
    } finally {
      p.remove();
    }
  });

  it('names a bad environment variable and its value', async () => {
    const r = await runCli(['process-tasks', '--batch', '--no-startup-delay'], project.dir, { BGTASKS_MAX_ATTEMPTS: 'many' });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/Invalid maxAttempts \(from BGTASKS_MAX_ATTEMPTS\): "many" — expected an integer >= 1/);
  });
});

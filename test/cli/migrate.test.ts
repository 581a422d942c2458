/**
 * CLI behaviours that no other spawned test covers, with the real compiled binary: `process-tasks
 * --migrate --batch` on an unmigrated database, `migrate --status` before and after `migrate`, a
 * database migrated by a newer bgtasks, `-v`/`-q`, `--help` of every command, and SIGINT (once
 * and twice) on a plain worker. On SQLite (the project's default file) and, when configured,
 * MariaDB and PostgreSQL; pure argument parsing runs once.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { killLeftovers, makeProject, runCli, startCli, type Project, type RunResult, type Spawned } from '../helpers/project.js';
import { cliTargets, ranLines } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations, runMigrations, schemaStatus } from '../../core/store/migrate.js';
import { parseDatabase } from '../../core/config/database-spec.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import { readResult } from '../../core/api/results.js';
import type { Store } from '../../core/store/store.js';
import { MIGRATIONS } from '../../migrations/list.js';

const TASKS = `
import { appendFileSync, existsSync } from 'node:fs';
import { background } from 'bgtasks';

export const record = background(async function record(n: number) {
  appendFileSync(process.env.RUN_LOG!, n + ' ' + process.pid + '\\n');
  return n * 2;
});

/** One line at each level through the task's own logger. */
export const chatty = background({ name: 'chatty', context: true }, async function chatty(ctx: any, tag: string) {
  ctx.log.debug('chatty debug line', { tag });
  ctx.log.info('chatty info line', { tag });
  ctx.log.warn('chatty warn line', { tag });
  return tag;
});

/** Runs until the file \`gate\` exists (the test creates it), or until its signal aborts. */
export const gated = background({ name: 'gated', context: true }, async function gated(ctx: any, gate: string) {
  ctx.signal.addEventListener('abort', () => appendFileSync(process.env.ABORT_LOG!, String(ctx.signal.reason?.name) + '\\n'));
  while (!existsSync(gate) && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
  if (ctx.signal.aborted) throw ctx.signal.reason;
  return 'opened';
});
`;

const MIGRATION_NAMES = MIGRATIONS.map((m) => m.name);

function expectCode(r: RunResult, code: number): void {
  expect(r.code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).to.equal(code);
}

/** The log lines of a human-format worker output at `level` (e.g. "DEBUG", "INFO"). */
function linesAt(stdout: string, level: string): string[] {
  return stdout.split('\n').filter((l) => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${level}\\s`).test(l));
}

describe('bgtasks --help and flag parsing, spawned', function () {
  this.timeout(60_000);
  let project: Project;
  before(() => {
    project = makeProject();
  });
  after(() => project.remove());

  it('<command> --help exits 0 with a usage naming the command, for every command `bgtasks --help` lists', async () => {
    const top = await runCli(['--help'], project.dir);
    expectCode(top, 0);
    const section = /\nCommands:\n([\s\S]*?)\n\n/.exec(top.stdout);
    expect(section, top.stdout).to.not.equal(null);
    // An entry starts two spaces in; its wrapped description lines are indented further.
    const commands = section![1]!
      .split('\n')
      .map((l) => /^ {2}([a-z][\w-]*)\b/.exec(l)?.[1])
      .filter((c): c is string => c !== undefined);
    expect(commands).to.include.members(['process-tasks', 'migrate', 'schedules', 'list', 'prune-results']);
    expect(new Set(commands).size).to.equal(commands.length);

    const runs = await Promise.all(commands.map((c) => runCli([c, '--help'], project.dir)));
    runs.forEach((r, i) => {
      const c = commands[i]!;
      expectCode(r, 0);
      expect(r.stderr, c).to.equal('');
      if (c === 'help') {
        // Commander's own help command: its --help is the program's usage, which lists it.
        expect(r.stdout, c).to.match(/^Usage: bgtasks \[options\] \[command\]\n/);
        expect(r.stdout, c).to.match(/\n {2}help \[command\]\s/);
      } else {
        expect(r.stdout, c).to.match(new RegExp(`^Usage: bgtasks ${c} `));
        expect(r.stdout, c).to.match(/\n {2}-h, --help\s/);
      }
    });
  });

  it('-v with -q (or --verbose with --quiet) is a usage error: exit 2, one line naming both flags', async () => {
    const runs = await Promise.all([
      runCli(['process-tasks', '--batch', '-v', '-q'], project.dir),
      runCli(['process-tasks', '--batch', '--verbose', '--quiet'], project.dir),
    ]);
    for (const r of runs) {
      expectCode(r, 2);
      expect(r.stderr).to.match(/^bgtasks: .*--verbose.*--quiet.*\n$/);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stdout).to.equal('');
    }
  });
});

for (const t of cliTargets()) {
  describe(`bgtasks CLI gaps, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    let env: Record<string, string>;
    let runLog: string;
    let abortLog: string;
    let display: string;
    const children: Spawned[] = [];
    const migrationsTable = `${t.prefix}migrations`;

    const cli = (...args: string[]) => runCli(args, project.dir, env);
    const worker = (...args: string[]) => {
      const s = startCli(['process-tasks', '--no-startup-delay', '--sleep', '0.1', ...args], project.dir, env);
      children.push(s);
      return s;
    };
    /** A pending task written straight into the tasks table (faster than spawning a script). */
    const enqueue = async (name: string, args: unknown[], queue: string | null = null) => {
      const text = JSON.stringify(args);
      const now = Date.now();
      const [id] = await store.insertTasks([plainTask({ name, args: text, hash: taskHash(name, text), queue, runAt: now, enqueuedAt: now })]);
      return id!;
    };
    const unmigrate = async () => {
      await rollbackMigrations(store.conn, t.prefix);
      expect((await schemaStatus(store.conn, t.prefix)).applied).to.deep.equal([]);
    };
    const migrated = async () => {
      await runMigrations(store.conn, t.prefix);
      await store.knex(store.tables.tasks).del();
      await store.knex(store.tables.completed).del();
    };

    before(async () => {
      project = makeProject({ 'tasks.ts': TASKS });
      runLog = path.join(project.dir, 'ran.log');
      abortLog = path.join(project.dir, 'aborts.log');
      env = { ...t.env, RUN_LOG: runLog, ABORT_LOG: abortLog };
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      display = parseDatabase(t.url(project), project.dir, 'test').display;
    });
    afterEach(async () => {
      await killLeftovers(children);
    });
    after(async () => {
      if (store) {
        await store.knex(migrationsTable).where('name', 'like', '999_%').del().catch(() => {});
        await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      }
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('process-tasks --migrate --batch migrates an unmigrated database, then runs; a later run executes enqueued work', async () => {
      await unmigrate();
      const first = await cli('process-tasks', '--migrate', '--batch');
      expectCode(first, 0);
      expect(first.stderr).to.equal('');
      const lines = first.stdout.split('\n');
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      const migratedAt = at(new RegExp(`INFO  migrated .*applied=${MIGRATION_NAMES.join(',')}$`));
      expect(migratedAt, first.stdout).to.be.at.least(0);
      expect(at(/INFO {2}worker started /), first.stdout).to.be.greaterThan(migratedAt);
      expect(at(/INFO {2}worker stopped .*reason=batch/), first.stdout).to.be.greaterThan(migratedAt);
      const status = await schemaStatus(store.conn, t.prefix);
      expect(status).to.deep.equal({ applied: MIGRATION_NAMES, pending: [], unknown: [] });

      const ids = [await enqueue('record', [1]), await enqueue('record', [2]), await enqueue('record', [3])];
      const second = await cli('process-tasks', '--migrate', '--batch');
      expectCode(second, 0);
      expect(second.stdout).not.to.match(/INFO {2}migrated /);
      expect(ranLines(runLog).map((l) => Number(l.split(' ')[0])).sort()).to.deep.equal([1, 2, 3]);
      for (const id of ids) expect((await readResult(store, id)).status).to.equal('SUCCESSFUL');
    });

    it('migrate --status lists every migration pending (exit 3) before `bgtasks migrate`, and applied (exit 0) after', async () => {
      expect(MIGRATION_NAMES).to.include('001_initial');
      await unmigrate();
      const head = `database: ${display} (table prefix "${t.prefix}")`;
      const [before, beforeJson] = await Promise.all([cli('migrate', '--status'), cli('migrate', '--status', '--json')]);
      expectCode(before, 3);
      expect(before.stdout).to.equal(
        [head, ...MIGRATION_NAMES.map((n) => `  pending  ${n}`), `${MIGRATION_NAMES.length} pending: run \`bgtasks migrate\``, ''].join('\n'),
      );
      expectCode(beforeJson, 3);
      expect(JSON.parse(beforeJson.stdout)).to.deep.equal({ database: display, tablePrefix: t.prefix, applied: [], pending: MIGRATION_NAMES, unknown: [] });
      // --status changes nothing.
      expect((await schemaStatus(store.conn, t.prefix)).applied).to.deep.equal([]);

      const m = await cli('migrate');
      expectCode(m, 0);
      expect(m.stdout).to.equal(`Applied ${MIGRATION_NAMES.length} migration(s) to ${display}: ${MIGRATION_NAMES.join(', ')}\n`);

      const [after, afterJson] = await Promise.all([cli('migrate', '--status'), cli('migrate', '--status', '--json')]);
      expectCode(after, 0);
      expect(after.stdout).to.equal([head, ...MIGRATION_NAMES.map((n) => `  applied  ${n}`), 'up to date', ''].join('\n'));
      expectCode(afterJson, 0);
      expect(JSON.parse(afterJson.stdout)).to.deep.equal({ database: display, tablePrefix: t.prefix, applied: MIGRATION_NAMES, pending: [], unknown: [] });
    });

    it('process-tasks refuses a database migrated by a newer bgtasks (exit 3, names the unknown migration, says to upgrade)', async () => {
      await migrated();
      const future = '999_from_a_future_version';
      await store.knex(migrationsTable).insert({ name: future, batch: 99, migration_time: new Date() });
      try {
        const id = await enqueue('record', [42]);
        const [plain, withMigrate, migrate, status] = await Promise.all([
          cli('process-tasks', '--batch'),
          cli('process-tasks', '--batch', '--migrate'),
          cli('migrate'),
          cli('migrate', '--status'),
        ]);
        const refusal = `bgtasks: The database ${display} was migrated by a newer version of bgtasks (unknown migrations: ${future}). Upgrade bgtasks.\n`;
        for (const r of [plain, withMigrate, migrate]) {
          expectCode(r, 3);
          expect(r.stderr).to.equal(refusal);
        }
        for (const r of [plain, withMigrate]) expect(r.stdout).not.to.match(/worker started/);
        expectCode(status, 3);
        expect(status.stdout).to.include(`  applied  ${future}  (unknown to this version: upgrade bgtasks)\n`);
        expect(status.stdout).to.match(/\nmigrated by a newer bgtasks\n$/);
        // Nothing ran and the schema is as it was.
        expect(ranLines(runLog).map((l) => Number(l.split(' ')[0]))).not.to.include(42);
        expect((await readResult(store, id)).status).to.equal('READY');
        expect((await schemaStatus(store.conn, t.prefix)).applied).to.deep.equal([...MIGRATION_NAMES, future]);
      } finally {
        await store.knex(migrationsTable).where('name', future).del();
      }
      const again = await cli('process-tasks', '--batch');
      expectCode(again, 0);
      expect(ranLines(runLog).map((l) => Number(l.split(' ')[0]))).to.include(42);
    });

    it('-v adds the debug lines the default level hides; -q keeps warnings but no info lines', async () => {
      await migrated();
      const ids = {
        normal: await enqueue('chatty', ['normal'], 'q-normal'),
        verbose: await enqueue('chatty', ['verbose'], 'q-verbose'),
        quiet: await enqueue('chatty', ['quiet'], 'q-quiet'),
      };
      const [normal, verbose, quiet] = await Promise.all([
        cli('process-tasks', '--batch', '--queue', 'q-normal'),
        cli('process-tasks', '--batch', '--queue', 'q-verbose', '-v'),
        cli('process-tasks', '--batch', '--queue', 'q-quiet', '-q'),
      ]);
      for (const r of [normal, verbose, quiet]) {
        expectCode(r, 0);
        expect(r.stderr).to.equal('');
      }
      for (const id of Object.values(ids)) expect((await readResult(store, id)).status).to.equal('SUCCESSFUL');

      expect(linesAt(normal.stdout, 'DEBUG'), normal.stdout).to.deep.equal([]);
      expect(linesAt(normal.stdout, 'INFO').join('\n')).to.match(new RegExp(`chatty info line .*id=${ids.normal} name=chatty tag=normal`));

      const debug = linesAt(verbose.stdout, 'DEBUG');
      expect(debug, verbose.stdout).to.have.length(1);
      expect(debug[0]).to.match(new RegExp(`DEBUG chatty debug line .*id=${ids.verbose} name=chatty tag=verbose$`));
      expect(linesAt(verbose.stdout, 'INFO').join('\n')).to.match(/chatty info line .*tag=verbose/);

      expect(linesAt(quiet.stdout, 'INFO'), quiet.stdout).to.deep.equal([]);
      expect(linesAt(quiet.stdout, 'DEBUG'), quiet.stdout).to.deep.equal([]);
      expect(linesAt(quiet.stdout, 'WARN').join('\n')).to.match(new RegExp(`chatty warn line .*id=${ids.quiet} name=chatty tag=quiet`));
      // The default level writes the info lines -q drops.
      expect(linesAt(normal.stdout, 'INFO').join('\n')).to.match(/worker started[\s\S]*worker stopped/);
    });

    it('SIGINT on a plain worker: no new claims, the running task finishes, exit 0', async () => {
      await migrated();
      const gate = path.join(project.dir, 'gate-open');
      const id = await enqueue('gated', [gate]);
      const w = worker('--grace', '30');
      await waitUntil(() => new RegExp(`task started .*id=${id} name=gated`).test(w.stdout()), 'the gated task to start', 20_000);
      w.child.kill('SIGINT');
      await waitUntil(() => /WARN {2}SIGINT received: no new tasks/.test(w.stdout()), 'the worker to log the signal', 10_000);
      const late = await enqueue('record', [77]);
      expect(w.child.exitCode, 'the worker exited before its task finished').to.equal(null);
      expect((await readResult(store, id)).status).to.equal('RUNNING');

      writeFileSync(gate, '');
      const r = await w.exited;
      expectCode(r, 0);
      expect(r.stderr).to.equal('');
      expect(r.stdout).to.match(new RegExp(`task succeeded .*id=${id} name=gated`));
      expect(r.stdout).not.to.match(/received again/);
      const res = await readResult<string>(store, id);
      expect(res.status).to.equal('SUCCESSFUL');
      expect(res.returnValue).to.equal('opened');
      expect(res.attempts).to.equal(1);
      // Enqueued after the signal: left for the next worker.
      const lateRes = await readResult(store, late);
      expect(lateRes.status).to.equal('READY');
      expect(lateRes.attempts).to.equal(0);
      expect(ranLines(runLog).map((l) => Number(l.split(' ')[0]))).not.to.include(77);
    });

    it('a second SIGINT while the task still runs stops at once: exit 0, the task READY again, attempt given back, no error', async () => {
      await migrated();
      writeFileSync(abortLog, '');
      const id = await enqueue('gated', [path.join(project.dir, 'gate-never-opened')]);
      const w = worker('--grace', '30');
      await waitUntil(() => new RegExp(`task started .*id=${id} name=gated`).test(w.stdout()), 'the gated task to start', 20_000);
      w.child.kill('SIGINT');
      await waitUntil(() => /WARN {2}SIGINT received: no new tasks/.test(w.stdout()), 'the worker to log the first signal', 10_000);
      expect((await readResult(store, id)).status).to.equal('RUNNING');
      const sentAt = Date.now();
      w.child.kill('SIGINT');
      const r = await w.exited;
      // Well inside the 30 s grace the first signal granted.
      expect(Date.now() - sentAt).to.be.below(10_000);
      expectCode(r, 0);
      expect(r.stderr).to.equal('');
      expect(r.stdout).to.match(/WARN {2}SIGINT received again: aborting running tasks and releasing them/);
      expect(r.stdout).to.match(new RegExp(`task released \\(attempt given back\\) .*id=${id} name=gated.*outcome=released`));
      expect(readFileSync(abortLog, 'utf8')).to.equal('WorkerStoppedError\n');

      const res = await readResult(store, id);
      expect(res.status).to.equal('READY');
      expect(res.attempts).to.equal(0);
      expect(res.errors).to.deep.equal([]);
      expect(res.hasError).to.equal(false);
      const row = (await store.findPending(id))!;
      expect(row.lockedBy).to.equal(null);
    });
  });
}

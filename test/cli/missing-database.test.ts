/**
 * A SQLite database whose file is not there, with the real binary: only `migrate` and
 * `process-tasks --migrate` create it. Every other command (run, say, from the wrong directory,
 * where the default database is ./bgtasks.sqlite3) stops with exit 3 and what to run, and leaves
 * no empty file behind. A task file that names its database with configure() still runs on it.
 * SQLite only: the other databases have no file to create.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makeProject, runCli, type Project } from '../helpers/project.js';

const TASKS = "import { background } from 'bgtasks';\nexport const noop = background(function noop(n: number) {\n  return n;\n});\n";

describe('a SQLite database file that does not exist, spawned [sqlite]', function () {
  this.timeout(60_000);
  let project: Project;
  let file: string;
  beforeEach(() => {
    project = makeProject({ 'tasks.ts': TASKS });
    file = path.join(project.dir, 'bgtasks.sqlite3');
  });
  afterEach(() => project.remove());

  for (const args of [['list'], ['stats'], ['enqueue', 'noop', '--args', '[1]'], ['process-tasks', '--batch', '--no-startup-delay']]) {
    it(`${args.join(' ')}: exit 3, names the file and what to run, creates nothing`, async () => {
      const r = await runCli(args, project.dir);
      expect(r.code, r.stderr).to.equal(3);
      expect(r.stderr).to.include(`sqlite:${file} is not migrated: its file does not exist`);
      expect(r.stderr).to.match(/Run `bgtasks migrate`/);
      expect(r.stderr).not.to.match(/\n\s+at /);
      expect(existsSync(file), 'the database file').to.equal(false);
    });
  }

  it('migrate --status: nothing applied, every migration pending, exit 3, and the file still not there', async () => {
    const r = await runCli(['migrate', '--status'], project.dir);
    expect(r.code, r.stderr).to.equal(3);
    expect(r.stdout).to.include(`database: sqlite:${file} (table prefix "bgtasks_") (its file does not exist)`);
    expect(r.stdout).to.match(/pending: run `bgtasks migrate`/);
    expect(r.stdout).not.to.match(/ applied /);
    const j = await runCli(['migrate', '--status', '--json'], project.dir);
    expect(j.code, j.stderr).to.equal(3);
    const s = JSON.parse(j.stdout) as { database: string; applied: string[]; pending: string[]; unknown: string[] };
    expect(s.database).to.equal(`sqlite:${file}`);
    expect(s.applied).to.deep.equal([]);
    expect(s.unknown).to.deep.equal([]);
    expect(s.pending.length).to.be.greaterThan(0);
    expect(existsSync(file), 'the database file').to.equal(false);
  });

  it('a file in a directory that is not there: the directory error (exit 2), not "run migrate"', async () => {
    const db = path.join(project.dir, 'var', 'app.sqlite3');
    for (const args of [['list'], ['migrate', '--status'], ['process-tasks', '--batch', '--no-startup-delay']]) {
      const r = await runCli([...args, '--database', `sqlite:${db}`], project.dir);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr).to.include(`its directory ${path.dirname(db)} does not exist`);
    }
  });

  it('migrate creates it; process-tasks --migrate does too', async () => {
    const m = await runCli(['migrate'], project.dir);
    expect(m.code, m.stderr).to.equal(0);
    expect(existsSync(file)).to.equal(true);
    const other = path.join(project.dir, 'other.sqlite3');
    const p = await runCli(['process-tasks', '--batch', '--no-startup-delay', '--migrate', '--database', `sqlite:${other}`], project.dir);
    expect(p.code, p.stderr).to.equal(0);
    expect(existsSync(other)).to.equal(true);
  });

  it('a task file that configures another database: the worker runs on it, and the default file is not created', async () => {
    const db = path.join(project.dir, 'app.sqlite3');
    project.write(
      'tasks.ts',
      `import { background, configure } from 'bgtasks';\nconfigure({ database: ${JSON.stringify(`sqlite:${db}`)} });\n` +
        'export const noop = background(function noop(n: number) {\n  return n;\n});\n',
    );
    const m = await runCli(['migrate', '--database', `sqlite:${db}`], project.dir);
    expect(m.code, m.stderr).to.equal(0);
    const e = await runCli(['enqueue', 'noop', '--args', '[7]'], project.dir);
    expect(e.code, e.stderr).to.equal(0);
    const r = await runCli(['process-tasks', '--batch', '--no-startup-delay'], project.dir);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/succeeded/);
    expect(existsSync(file), 'the default database file').to.equal(false);
  });
});

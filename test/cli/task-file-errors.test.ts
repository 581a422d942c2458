/**
 * What `process-tasks` says about a task file it cannot load, with the real binary:
 * - a syntax error is a code frame (file, line, column, the line with a caret), not esbuild's or
 *   Node's internal frames, for TypeScript (tsx/esbuild) and JavaScript (Node) files alike;
 * - a task name registered twice names the user's two files, never bgtasks' own registry, whether
 *   bgtasks runs compiled, with `node --enable-source-maps`, from its source tree through tsx, or
 *   as an installed package (a copy of dist/ whose source maps point at a core/ that is not there).
 * The import happens after the database opens and does not depend on it: run on SQLite.
 */
import { expect } from 'chai';
import { cpSync, mkdirSync, symlinkSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { CLI, makeProject, REPO, spawnNode, TSX_LOADER, type Project, type RunResult } from '../helpers/project.js';

const IMPORT = "import { background } from 'bgtasks';\n";

function expectNoInternals(stderr: string): void {
  expect(stderr).not.to.match(/esbuild|node:internal|commander|\/core\/definition\/|\/dist\//);
}

describe('process-tasks on a task file that cannot load, spawned [sqlite]', function () {
  this.timeout(60_000);
  let project: Project;
  beforeEach(() => {
    project = makeProject();
  });
  afterEach(() => project.remove());
  const run = (args: string[], node: string[] = [], cli = CLI): Promise<RunResult> =>
    spawnNode([...node, cli, 'process-tasks', '--batch', '--no-startup-delay', ...args], project.dir).exited;

  it('a TypeScript syntax error: exit 1, the file, line and column, and the line with a caret under the column', async () => {
    const file = project.write('tasks.ts', `${IMPORT}\nexport const double = background(async function double(n: number) {\n  return n +* 2;\n});\n`);
    const r = await run([]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      [
        `bgtasks: Cannot import task file ${file}: syntax error at ${file}:4:13: Unexpected "*"`,
        '',
        '  3 | export const double = background(async function double(n: number) {',
        '> 4 |   return n +* 2;',
        '    |             ^',
        '  5 | });',
        '',
      ].join('\n'),
    );
    expectNoInternals(r.stderr);
  });

  it('a JavaScript syntax error (Node itself gives no place for an ES module): the same code frame', async () => {
    const file = project.write('tasks.js', `${IMPORT}export const a = background(async function a(n) {\n\treturn n +* 2;\n});\n`);
    const r = await run([]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      [
        `bgtasks: Cannot import task file ${file}: syntax error at ${file}:3:12: Unexpected token '*'`,
        '',
        '  2 | export const a = background(async function a(n) {',
        '> 3 | \treturn n +* 2;',
        '    | \t          ^',
        '  4 | });',
        '',
      ].join('\n'),
    );
    expectNoInternals(r.stderr);
  });

  it('a syntax error in a module the task file imports names that module', async () => {
    const task = project.write('tasks.ts', `${IMPORT}import { helper } from './lib/helper.js';\nexport const t = background(function t() { return helper(); });\n`);
    const lib = project.write('lib/helper.ts', 'export function helper() {\n  return 1 +* 2;\n}\n');
    const r = await run([]);
    expect(r.code).to.equal(1);
    expect(r.stderr.split('\n').slice(0, 5)).to.deep.equal([
      `bgtasks: Cannot import task file ${task}: syntax error at ${lib}:2:13: Unexpected "*"`,
      '',
      '  1 | export function helper() {',
      '> 2 |   return 1 +* 2;',
      '    |             ^',
    ]);
    expectNoInternals(r.stderr);
  });

  it('a module the task file imports that does not exist: its name, and none of the loader\'s frames', async () => {
    const task = project.write('tasks.ts', `${IMPORT}import { helper } from './lib/missing.js';\nexport const t = background(function t() { return helper(); });\n`);
    const r = await run([]);
    expect(r.code).to.equal(1);
    const [first, second] = r.stderr.split('\n');
    expect(first).to.equal(`bgtasks: Cannot import task file ${task}:`);
    expect(second).to.match(/^Error \[ERR_MODULE_NOT_FOUND\]: Cannot find module '.*[\\/]lib[\\/]missing\.js'/);
    expect(r.stderr).not.to.match(/node_modules[\\/]tsx|^\s+at /m);
    expectNoInternals(r.stderr);
  });

  describe('a task name registered by two files names both files', () => {
    const files = () => ({
      a: project.write('a.tasks.ts', `${IMPORT}export const a = background({ name: 'dup' }, async function a(n: number) {\n  return n + 2;\n});\n`),
      b: project.write('b.tasks.ts', `${IMPORT}\n\nexport const b = background({ name: 'dup' }, async function b(n: number) {\n  return n * 3;\n});\n`),
    });
    const expectBothFiles = (r: RunResult, f: { a: string; b: string }) => {
      expect(r.code, r.stderr).to.equal(1);
      const [first, second, ...frames] = r.stderr.trimEnd().split('\n');
      expect(first).to.equal(`bgtasks: Cannot import task file ${f.b}:`);
      expect(second).to.match(
        new RegExp(
          `^ValidationError: Task name "dup" is already registered by function a \\((file://)?${f.a}:2:18\\); cannot register function b \\((file://)?${f.b}:4:18\\) under the same name`,
        ),
      );
      // Only the user's line remains of the stack.
      expect(frames).to.have.length(1);
      expect(frames[0]).to.match(new RegExp(`^\\s+at .*${f.b}:4:18\\)?$`));
      expectNoInternals(r.stderr);
    };

    it('compiled (tsx maps the frames of TypeScript task files)', async () => {
      const f = files();
      expectBothFiles(await run(['--task-files', '*.tasks.ts']), f);
    });

    it('compiled, under node --enable-source-maps (bgtasks frames point at its .ts sources)', async () => {
      const f = files();
      expectBothFiles(await run(['--task-files', '*.tasks.ts'], ['--enable-source-maps']), f);
    });

    it('from the source tree through tsx', async () => {
      const f = files();
      const r = await run(['--task-files', '*.tasks.ts'], ['--import', TSX_LOADER, '--conditions=bgtasks-source'], path.join(REPO, 'cli', 'index.ts'));
      expectBothFiles(r, f);
    });

    it('as an installed package (a copy of dist/, source maps to a core/ that is not there), with --enable-source-maps', async () => {
      const f = files();
      // Replace the repository symlink by a package as npm installs it: package.json and dist/
      // (no core/ sources), its dependencies beside it.
      const pkg = path.join(project.dir, 'node_modules', 'bgtasks');
      unlinkSync(pkg);
      mkdirSync(pkg);
      cpSync(path.join(REPO, 'package.json'), path.join(pkg, 'package.json'));
      cpSync(path.join(REPO, 'dist'), path.join(pkg, 'dist'), { recursive: true });
      symlinkSync(path.join(REPO, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
      const r = await run(['--task-files', '*.tasks.ts'], ['--enable-source-maps'], path.join(pkg, 'dist', 'cli', 'index.js'));
      expectBothFiles(r, f);
      expect(r.stderr).not.to.include(pkg);
    });
  });
});

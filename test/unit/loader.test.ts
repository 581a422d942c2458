/**
 * Finding the task files ahead (definition/loader.ts startFindingTasks(), which process-tasks starts
 * while the database opens) and importing them with discoverTasks(): the same files, the same
 * errors, as when discoverTasks() finds them itself.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { discoverTasks, startFindingTasks } from '../../core/definition/loader.js';
import { unregister } from '../../core/definition/registry.js';
import { isErrorKind } from '../../core/errors.js';

const INDEX = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'core', 'index.ts')).href;

describe('task file loader: files found ahead', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-loader-test-'));
  });
  afterEach(() => {
    unregister('loaderAheadA');
    unregister('loaderAheadB');
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports the files startFindingTasks() found, sorted, and names their tasks', async () => {
    writeFileSync(path.join(dir, 'b.tasks.mjs'), `import { background } from '${INDEX}';\nexport const b = background(function loaderAheadB() {});\n`);
    writeFileSync(path.join(dir, 'a.tasks.mjs'), `import { background } from '${INDEX}';\nexport const a = background(function loaderAheadA() {});\n`);
    const globs = ['*.tasks.mjs'];
    const found = startFindingTasks(globs, dir);
    const { files, names } = await discoverTasks(globs, dir, found);
    expect(files).to.deep.equal([path.join(dir, 'a.tasks.mjs'), path.join(dir, 'b.tasks.mjs')]);
    expect(names).to.include.members(['loaderAheadA', 'loaderAheadB']);
  });

  it('no file found ahead is the same TaskLoadError as without', async () => {
    const globs = ['*.tasks.mjs'];
    let err: unknown = null;
    await discoverTasks(globs, dir, startFindingTasks(globs, dir)).catch((e: unknown) => (err = e));
    expect(isErrorKind(err, 'TaskLoadError'), String(err)).to.equal(true);
    expect((err as Error).message).to.match(/^No task files found: no file under .* matches \*\.tasks\.mjs/);
  });
});

/**
 * Finds and imports the task files. An import error is never swallowed (the reference's #111):
 * it stops the worker with the file and the error. A file that registers no task is an error too.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TASK_FILES_IGNORE } from '../config/settings.js';
import { TaskLoadError } from '../errors.js';
import { allRegistered } from './registry.js';
import { internalsOf } from './definition.js';

const TS_EXT = /\.(ts|mts|cts|tsx)$/;

/** The task files matching `globs` under `base`, sorted. */
export async function findTaskFiles(globs: readonly string[], base: string): Promise<string[]> {
  const { glob } = await import('tinyglobby');
  const files = await glob([...globs], { cwd: base, absolute: true, ignore: TASK_FILES_IGNORE, onlyFiles: true });
  return files.map((f) => path.resolve(f)).sort();
}

let tsxRegistered: Promise<void> | null = null;

/**
 * tsx's hooks, registered once for the process (not tsImport's per-call namespace): a task file's
 * `import … from 'bgtasks'` then reuses the copy already loaded instead of loading a second one,
 * and TypeScript files it imports later load too. Whatever is imported before this (knex, the
 * database driver) does not pass through the hooks.
 */
function registerTsx(): Promise<void> {
  tsxRegistered ??= import('tsx/esm/api').then(({ register }) => {
    register();
  });
  return tsxRegistered;
}

/** Whether Node treats `file` as an ES module: by its extension, else by the nearest package.json. */
function isEsm(file: string): boolean {
  if (/\.m[jt]s$/.test(file)) return true;
  if (/\.c[jt]s$/.test(file)) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: string }).type === 'module';
      } catch {
        return false;
      }
    }
    if (path.dirname(dir) === dir) return false;
  }
}

async function importFile(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  if (TS_EXT.test(file)) {
    if (!isEsm(file)) {
      // A TypeScript file in a CommonJS package: tsImport compiles it to CommonJS in a scope of
      // its own (global hooks would make Node load it as both kinds at once).
      const { tsImport } = await import('tsx/esm/api');
      return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    }
    await registerTsx();
  }
  return (await import(url)) as Record<string, unknown>;
}

function exportsDefinition(mod: Record<string, unknown>): boolean {
  const seen = new Set<unknown>();
  const visit = (v: unknown, depth: number): boolean => {
    if (depth > 2 || v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v)) return false;
    seen.add(v);
    if (internalsOf(v)) return true;
    if (typeof v === 'object') return Object.values(v as object).some((x) => visit(x, depth + 1));
    return false;
  };
  return visit(mod, 0);
}

/** Imports each file; returns the names of the registered tasks. */
export async function loadTaskFiles(files: readonly string[]): Promise<string[]> {
  for (const file of files) {
    const before = allRegistered().length;
    let mod: Record<string, unknown>;
    try {
      mod = await importFile(file);
    } catch (err) {
      const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
      throw new TaskLoadError(`Cannot import task file ${file}:\n${detail}`, { cause: err });
    }
    if (allRegistered().length === before && !exportsDefinition(mod)) {
      throw new TaskLoadError(`Task file ${file} registers no task: define tasks in it with background()`);
    }
  }
  return allRegistered().map((d) => d.name).sort();
}

/** Finds the files, fails when there are none, and imports them. */
export async function discoverTasks(globs: readonly string[], base: string): Promise<{ files: string[]; names: string[] }> {
  const files = await findTaskFiles(globs, base);
  if (files.length === 0) {
    throw new TaskLoadError(
      `No task files found: no file under ${base} matches ${globs.join(', ')} (node_modules, dist and .git are skipped). Set taskFiles or pass --task-files.`,
    );
  }
  return { files, names: await loadTaskFiles(files) };
}

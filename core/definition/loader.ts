/**
 * Finds and imports the task files. An import error is never swallowed (the reference's #111):
 * it stops the worker with the file and the error. A file that registers no task is an error too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TASK_FILES_IGNORE } from '../config/settings.js';
import { TaskLoadError } from '../errors.js';
import { allRegistered, isInternalFrame } from './registry.js';
import { internalsOf } from './definition.js';

const TS_EXT = /\.(ts|mts|cts|tsx)$/;

/** The task files matching `globs` under `base`, sorted. */
export async function findTaskFiles(globs: readonly string[], base: string): Promise<string[]> {
  const { glob } = await import('tinyglobby');
  const files = await glob([...globs], { cwd: base, absolute: true, ignore: TASK_FILES_IGNORE, onlyFiles: true });
  return files.map((f) => path.resolve(f)).sort();
}

let tsxApi: Promise<typeof import('tsx/esm/api')> | null = null;
let tsxRegistered: Promise<void> | null = null;

/** tsx's API module, imported once (importing it registers nothing). */
function loadTsxApi(): Promise<typeof import('tsx/esm/api')> {
  tsxApi ??= import('tsx/esm/api');
  return tsxApi;
}

/**
 * Starts finding the task files, and importing tsx's API as soon as one of them is TypeScript, so
 * that both overlap what the caller awaits meanwhile (opening the database). Pass the result to
 * discoverTasks(); a failure surfaces there, not here.
 */
export function startFindingTasks(globs: readonly string[], base: string): Promise<string[]> {
  const found = findTaskFiles(globs, base);
  found.then(
    (files) => {
      if (files.some((f) => TS_EXT.test(f))) loadTsxApi().catch(() => {});
    },
    () => {},
  );
  return found;
}

/**
 * tsx's hooks, registered once for the process (not tsImport's per-call namespace): a task file's
 * `import … from 'bgtasks'` then reuses the copy already loaded instead of loading a second one,
 * and TypeScript files it imports later load too. Whatever is imported before this (knex, the
 * database driver) does not pass through the hooks.
 */
function registerTsx(): Promise<void> {
  tsxRegistered ??= loadTsxApi().then(({ register }) => {
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
      const { tsImport } = await loadTsxApi();
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
      const syntax = syntaxErrorReport(err, file);
      if (syntax) throw new TaskLoadError(`Cannot import task file ${file}: ${syntax}`, { cause: err });
      throw new TaskLoadError(`Cannot import task file ${file}:\n${errorWithUserFrames(err)}`, { cause: err });
    }
    if (allRegistered().length === before && !exportsDefinition(mod)) {
      throw new TaskLoadError(`Task file ${file} registers no task: define tasks in it with background()`);
    }
  }
  return allRegistered().map((d) => d.name).sort();
}

/**
 * An import error with its stack cut to the application's frames: the ones from the top of the
 * stack (past bgtasks' own, when a bgtasks function threw) down to the first of Node's or
 * bgtasks' frames below them, which belong to the import itself (the module job, the loader, the
 * command) and say nothing about the line to fix.
 */
function errorWithUserFrames(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const stack = err.stack ?? `${err.name}: ${err.message}`;
  const lines = stack.split('\n');
  const firstFrame = lines.findIndex((l) => /^\s+at /.test(l));
  if (firstFrame < 0) return stack;
  const kept: string[] = [];
  for (const frame of lines.slice(firstFrame)) {
    if (!isInternalFrame(frame)) kept.push(frame);
    else if (kept.length > 0) break;
  }
  return [...lines.slice(0, firstFrame), ...kept].join('\n');
}

interface SyntaxPlace {
  file: string;
  /** 1-based. */
  line: number;
  /** 0-based, in UTF-16 units of the line. */
  column: number;
  text: string;
}

/**
 * Where a syntax error is. tsx reports esbuild's error, whose message (the error crosses from
 * tsx's loader thread as a plain message) starts "Transform failed with 1 error:\n<file>:<line>:
 * <column>: ERROR: <text>". Node's own SyntaxError for an ES module carries no location at all, so
 * a JavaScript file is checked again with `node --check`, which prints it.
 */
function syntaxPlace(err: unknown, file: string): SyntaxPlace | null {
  if (!(err instanceof Error)) return null;
  const esbuild = /^(.+?):(\d+):(\d+): ERROR: (.+)$/m.exec(err.message);
  if (/Transform failed/.test(err.message) && esbuild) {
    return { file: esbuild[1]!, line: Number(esbuild[2]), column: Number(esbuild[3]), text: esbuild[4]! };
  }
  if (err.name !== 'SyntaxError' || TS_EXT.test(file)) return null;
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  // "<file>:<line>\n<code>\n<spaces>^…\n\nSyntaxError: <text>"
  const m = /^(.+):(\d+)\n.*\n(\s*)\^+\s*\n\s*\nSyntaxError: (.+)$/m.exec(check.stderr ?? '');
  if (check.status === 0 || !m) return null;
  return { file: m[1]!, line: Number(m[2]), column: m[3]!.length, text: m[4]! };
}

/**
 * A syntax error as a code frame: the place, the message, the line before, the offending line
 * with a caret under the column, and the line after. Null when `err` is not a syntax error whose
 * place is known (its stack is shown instead).
 */
export function syntaxErrorReport(err: unknown, file: string): string | null {
  const p = syntaxPlace(err, file);
  if (!p) return null;
  let lines: string[];
  try {
    lines = readFileSync(p.file, 'utf8').split(/\r?\n/);
  } catch {
    return `syntax error at ${p.file}:${p.line}:${p.column + 1}: ${p.text}`;
  }
  const width = String(Math.min(lines.length, p.line + 1)).length;
  const row = (n: number, mark: string) => `${mark} ${String(n).padStart(width)} | ${lines[n - 1]}`;
  const offending = lines[p.line - 1] ?? '';
  // Tabs stay tabs, so the caret lines up however the terminal draws them.
  const pad = offending.slice(0, p.column).replace(/[^\t]/g, ' ');
  const frame = [
    ...(p.line > 1 ? [row(p.line - 1, ' ')] : []),
    row(p.line, '>'),
    `  ${' '.repeat(width)} | ${pad}^`,
    ...(p.line < lines.length ? [row(p.line + 1, ' ')] : []),
  ];
  return `syntax error at ${p.file}:${p.line}:${p.column + 1}: ${p.text}\n\n${frame.join('\n')}`;
}

/** Finds the files (or takes those startFindingTasks() found), fails when there are none, and imports them. */
export async function discoverTasks(
  globs: readonly string[],
  base: string,
  found: Promise<string[]> = findTaskFiles(globs, base),
): Promise<{ files: string[]; names: string[] }> {
  const files = await found;
  if (files.length === 0) {
    throw new TaskLoadError(
      `No task files found: no file under ${base} matches ${globs.join(', ')} (node_modules, dist and .git are skipped). Set taskFiles or pass --task-files.`,
    );
  }
  return { files, names: await loadTaskFiles(files) };
}

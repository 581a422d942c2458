/**
 * The process-wide registry of task definitions, by name. Registering a different function under
 * a taken name is an error naming both; importing the same file twice (same source) is not.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ValidationError } from '../errors.js';
import { processWide } from '../base/global.js';
import type { DefinitionInternals } from './definition.js';
import { checkNoNul } from '../policy/options.js';

const registry = processWide('registry', () => new Map<string, DefinitionInternals>());

export function register(def: DefinitionInternals): DefinitionInternals {
  checkNoNul(def.name, 'task name');
  const existing = registry.get(def.name);
  if (existing && existing.fn !== def.fn && existing.fn.toString() !== def.fn.toString()) {
    const a = describe(existing);
    const b = describe(def);
    throw new ValidationError(
      `Task name "${def.name}" is already registered by ${a}; cannot register ${b} under the same name — give one of them another { name }`,
    );
  }
  registry.set(def.name, def);
  return def;
}

function describe(d: DefinitionInternals): string {
  const fnName = d.fn.name ? `function ${d.fn.name}` : 'an anonymous function';
  return d.origin ? `${fnName} (${d.origin})` : fnName;
}

export function getRegistered(name: string): DefinitionInternals | undefined {
  return registry.get(name);
}

export function registeredNames(): string[] {
  return [...registry.keys()].sort();
}

export function allRegistered(): DefinitionInternals[] {
  return [...registry.values()];
}

/** Removes one definition (tests that must not leak their tasks into other suites' workers). */
export function unregister(name: string): void {
  registry.delete(name);
}

/** Empties the registry (tests; the dev supervisor uses a fresh process instead). */
export function clearRegistry(): void {
  registry.clear();
}

/**
 * Where bgtasks' own frames live. This file is core/definition/registry.ts in the source tree (run
 * through tsx), dist/core/definition/registry.js as tsc emits it, and part of a chunk under
 * dist/chunks/ once the build has bundled it (what an installed package runs); with
 * source maps (tsx, `node --enable-source-maps`) a build's frames name the .ts sources under
 * core/, beside dist/. So every frame under the package's core/, dist/ or cli/ is ours, whichever
 * of these runs, and whether it is reached as a path or as a file URL.
 */
const HERE = fileURLToPath(import.meta.url);
const PACKAGE_ROOT = HERE.replace(/[\\/](?:dist[\\/])?core[\\/]definition[\\/]registry\.[cm]?[jt]s$/, '')
  .replace(/[\\/]dist[\\/]chunks[\\/][^\\/]+\.js$/, '');
const OWN_PREFIXES = [
  ...(PACKAGE_ROOT !== HERE ? ['core', 'dist', 'cli'].map((d) => path.join(PACKAGE_ROOT, d)) : []),
  // This file's own room, if it was ever moved or bundled so the pattern above does not match.
  path.dirname(path.dirname(HERE)),
].flatMap((dir) => [dir + path.sep, `${pathToFileURL(dir).href}/`]);

/**
 * The TypeScript loader bgtasks registers for task files (tsx): its frames are the import's
 * machinery, like Node's (a task file importing a module that does not exist showed only tsx's
 * resolver frames), as a path or a file URL, on POSIX or Windows.
 */
const LOADER_FRAME = /node_modules[\\/]tsx[\\/]/;

/** Whether a stack frame line is bgtasks' own, its TypeScript loader's or Node's (not the application's). */
export function isInternalFrame(line: string): boolean {
  return line.includes('node:internal') || LOADER_FRAME.test(line) || OWN_PREFIXES.some((p) => line.includes(p));
}

/**
 * The first stack frame of `site` (an Error made where a task is defined) that is not bgtasks'
 * own (nor Node's): the task file's line.
 */
export function callerOrigin(site: Error = new Error()): string | null {
  const stack = site.stack?.split('\n').slice(1) ?? [];
  for (const line of stack) {
    if (isInternalFrame(line)) continue;
    const m = /\(?((?:file:\/\/)?[^()\s]+:\d+:\d+)\)?\s*$/.exec(line);
    if (m) return m[1]!;
  }
  return null;
}

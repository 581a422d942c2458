/**
 * The process-wide registry of task definitions, by name. Registering a different function under
 * a taken name is an error naming both; importing the same file twice (same source) is not.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

// This file sits in core/definition/: bgtasks' own frames are anywhere under core/.
const CORE_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CORE_URL = path.dirname(path.dirname(import.meta.url));

/** The first stack frame that is not inside bgtasks' own core: the task file's line. */
export function callerOrigin(): string | null {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const line of stack) {
    if (line.includes(CORE_DIR) || line.includes(CORE_URL) || line.includes('node:internal')) continue;
    const m = /\(?((?:file:\/\/)?[^()\s]+:\d+:\d+)\)?\s*$/.exec(line);
    if (m) return m[1]!;
  }
  return null;
}

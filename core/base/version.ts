/**
 * bgtasks' own version, read once from its package.json (found upward from this module: the
 * source tree and the built package sit at different depths). Null if it cannot be read.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null | undefined;

export function bgtasksVersion(): string | null {
  if (cached !== undefined) return cached;
  cached = null;
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'bgtasks') {
        cached = pkg.version ?? null;
        break;
      }
    } catch {
      // No package.json here: look further up.
    }
    if (path.dirname(dir) === dir) break;
  }
  return cached;
}

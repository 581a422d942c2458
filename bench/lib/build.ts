/**
 * The workers are the compiled CLI, so a stale `dist/` would measure old code: rebuild it
 * (`npm run build`) when any source file of the library, the CLI or the migrations is newer.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './cli.js';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds `dist/` unless it is newer than every source file. Returns whether it built. */
export function ensureBuilt(log: (line: string) => void): boolean {
  const sources = Math.max(...['core', 'cli', 'migrations'].map((d) => newestMtime(path.join(REPO, d))));
  const builtFiles = [path.join(REPO, 'dist', 'cli', 'index.js'), path.join(REPO, 'dist', 'core', 'index.js')];
  const built = builtFiles.every(existsSync) ? Math.min(...builtFiles.map((f) => statSync(f).mtimeMs)) : 0;
  if (built >= sources) return false;
  log('dist/ is missing or older than the sources: running npm run build …');
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: REPO, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed: the bench needs the compiled CLI');
  return true;
}

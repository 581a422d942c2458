/**
 * The library as an application uses it: the public entry point, one no-op task definition, and
 * `configure()` pointed at a scenario's tables. The CLI workers load the same definition from the
 * temporary project's `tasks.ts` (see cli.ts), so tasks enqueued here are theirs to run.
 */
import { background, closeConnections, configure } from '../../core/index.js';
import type { BenchTables } from './databases.js';

export const TASK_NAME = 'benchNoop';

/** A no-op: the bench measures the queue, not the work. */
export const benchNoop = background(function benchNoop(n: number): number {
  return n;
});

/** Points enqueue calls (and in-process workers) at this scenario's tables. */
export function useTables(t: BenchTables): void {
  configure({ database: t.url, tablePrefix: t.prefix });
}

/** Closes the library's connections (before a scenario's tables are dropped). */
export async function releaseLibrary(): Promise<void> {
  await closeConnections();
}

/** Enqueues `n` due tasks with `bulk()` (in chunks, so 100k calls do not make one huge transaction). */
export async function enqueueDue(n: number, chunk = 10_000): Promise<void> {
  for (let i = 0; i < n; i += chunk) {
    const calls = Array.from({ length: Math.min(chunk, n - i) }, (_, k): [number] => [i + k]);
    await benchNoop.bulk(calls);
  }
}

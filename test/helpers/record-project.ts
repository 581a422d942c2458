/** A test project whose task appends each run to a log file, and the databases CLI tests use. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { serverUrl, uniquePrefix } from './databases.js';
import type { Project } from './project.js';

export const RECORD_TASKS = `
import { appendFileSync } from 'node:fs';
import { background } from 'bgtasks';

export const record = background(async function record(n: number) {
  appendFileSync(process.env.RUN_LOG!, n + ' ' + process.pid + '\\n');
  return { n, doubled: n * 2 };
});
`;

export const ENQUEUE_SCRIPT = `
import { closeConnections } from 'bgtasks';
import { record } from './tasks.js';
const from = Number(process.argv[2]);
const count = Number(process.argv[3]);
for (let i = 0; i < count; i++) await record(from + i);
await closeConnections();
`;

export interface CliTarget {
  name: string;
  /** Environment that points the CLI at this database (empty: the default SQLite file). */
  env: Record<string, string>;
  url(p: Project): string;
  prefix: string;
}

/** SQLite (the default file in the project), plus the configured server databases. */
export function cliTargets(): CliTarget[] {
  const list: CliTarget[] = [{ name: 'sqlite', env: {}, url: (p) => `sqlite:${path.join(p.dir, 'bgtasks.sqlite3')}`, prefix: 'bgtasks_' }];
  for (const name of ['mysql', 'postgres'] as const) {
    const url = serverUrl(name);
    if (!url) continue;
    const prefix = uniquePrefix();
    list.push({ name, env: { BGTASKS_DATABASE_URL: url, BGTASKS_TABLE_PREFIX: prefix }, url: () => url, prefix });
  }
  return list;
}

/** The lines tasks appended to the run log: "<n> <pid>". */
export function ranLines(logFile: string): string[] {
  return existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean) : [];
}

/**
 * Shared by the scenario tests (docs/scenarios.md): a project whose task writes one effect row per
 * run into a database of its own, so duplicate executions are counted (no unique key: a second
 * run adds a second row instead of failing), an enqueuing application that records the outcome
 * and duration of every enqueue, and counting helpers.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Spawned } from '../helpers/project.js';

/**
 * `effect(n)` waits `EFFECT_MS` (default 20) and then inserts `(n, pid)` into EFFECTS_TABLE at
 * EFFECTS_URL. Its effects pool is separate from bgtasks' own, in another database on servers, so
 * a scenario can kill bgtasks' connections without touching the effect's. A failed effect write
 * is noted in effect-errors.txt in the working directory (failedEffectWrites).
 */
export const EFFECT_TASKS = `
import { appendFileSync } from 'node:fs';
import knexFactory from 'knex';
import { background } from 'bgtasks';

const url = process.env.EFFECTS_URL!;
function config() {
  if (url.startsWith('sqlite:')) {
    return { client: 'sqlite3', connection: { filename: url.slice('sqlite:'.length) }, useNullAsDefault: true,
      pool: { min: 1, max: 1, afterCreate: (c: any, done: any) => c.exec('PRAGMA busy_timeout = 30000', (e: any) => done(e, c)) } };
  }
  const u = new URL(url);
  const connection = { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1) };
  return { client: url.startsWith('postgres') ? 'pg' : 'mysql2', connection, pool: { min: 0, max: 4 } };
}
const db = knexFactory(config());
const ms = Number(process.env.EFFECT_MS ?? 20);

export const effect = background({ name: 'effect' }, async function effect(n: number) {
  await new Promise((r) => setTimeout(r, ms));
  try {
    await db(process.env.EFFECTS_TABLE!).insert({ n, pid: process.pid });
  } catch (e) {
    // A server that goes away may have committed the row before its answer was lost: noted in
    // effect-errors.txt, so that the retry of this failed attempt is told from a task run twice.
    appendFileSync('effect-errors.txt', String(n) + '\\n');
    throw e;
  }
  return n;
});
`;

/** `bulk.ts FROM COUNT`: enqueues effect(FROM … FROM+COUNT-1) in one bulk insert. */
export const BULK_ENQUEUE = `
import { closeConnections } from 'bgtasks';
import { effect } from './tasks.js';
const from = Number(process.argv[2]), count = Number(process.argv[3]);
await effect.bulk(Array.from({ length: count }, (_, i) => [from + i] as [number]));
await closeConnections();
process.exit(0);
`;

/**
 * `app.ts STOP_FILE MAX [BASE] [SECONDS]`: an application that enqueues effect(BASE+1),
 * effect(BASE+2), … one at a time until STOP_FILE exists (or MAX enqueues, or SECONDS, default 90),
 * printing "ok N MS" or "err N MS MESSAGE" for each: the outcome and how long the call took.
 */
export const ENQUEUING_APP = `
import { existsSync } from 'node:fs';
import { closeConnections } from 'bgtasks';
import { effect } from './tasks.js';
const [stopFile, max, base] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4] ?? 0)];
const end = Date.now() + Number(process.argv[5] ?? 90) * 1000;
for (let n = base + 1; n <= base + max && !existsSync(stopFile) && Date.now() < end; n++) {
  const t0 = Date.now();
  try {
    await effect(n);
    process.stdout.write('ok ' + n + ' ' + (Date.now() - t0) + '\\n');
  } catch (err) {
    process.stdout.write('err ' + n + ' ' + (Date.now() - t0) + ' ' + String((err as Error).message).replace(/\\s+/g, ' ') + '\\n');
  }
  await new Promise((r) => setTimeout(r, 10));
}
await closeConnections();
process.exit(0);
`;

export interface EnqueueOutcome {
  n: number;
  ok: boolean;
  ms: number;
  message: string;
}

export function enqueueOutcomes(stdout: string): EnqueueOutcome[] {
  return stdout
    .split('\n')
    .filter((l) => /^(ok|err) /.test(l))
    .map((l) => {
      const [kind, n, ms, ...rest] = l.split(' ');
      return { n: Number(n), ok: kind === 'ok', ms: Number(ms), message: rest.join(' ') };
    });
}

/** How many times each n ran, from effect rows. */
export function runsPerTask(rows: Array<{ n: unknown }>): Map<number, number> {
  const runs = new Map<number, number>();
  for (const r of rows) runs.set(Number(r.n), (runs.get(Number(r.n)) ?? 0) + 1);
  return runs;
}

/**
 * How many times each n's effect write failed in the task (EFFECT_TASKS notes them in
 * `effect-errors.txt` in the project directory): each may have committed all the same.
 */
export function failedEffectWrites(projectDir: string): Map<number, number> {
  const file = path.join(projectDir, 'effect-errors.txt');
  const counts = new Map<number, number>();
  if (!existsSync(file)) return counts;
  for (const l of readFileSync(file, 'utf8').split('\n').filter(Boolean)) counts.set(Number(l), (counts.get(Number(l)) ?? 0) + 1);
  return counts;
}

/**
 * The n that ran more than once where the task's own failed effect writes do not account for the
 * extra runs: a write that failed and was retried (the task threw, as it should) may have
 * committed before the server went away, which is the effect database's ambiguity, not a task
 * the queue ran twice.
 */
export function unexplainedDuplicates(runs: Map<number, number>, failedWrites: Map<number, number>): Array<[number, number]> {
  return duplicates(runs).filter(([n, c]) => c - 1 > (failedWrites.get(n) ?? 0));
}

/** The n that ran more than once, with their counts (empty when every task ran once). */
export function duplicates(runs: Map<number, number>): Array<[number, number]> {
  return [...runs].filter(([, c]) => c > 1);
}

/** The output of a spawned process, for an assertion message. */
export function outputOf(s: Spawned, lines = 40): string {
  return `${s.stdout().trim().split('\n').slice(-lines).join('\n')}\n${s.stderr()}`;
}

/** Asserts that `child` is still running (a worker that exited on a fault is a finding). */
export function expectRunning(s: Spawned, what: string): void {
  expect(s.child.exitCode === null && s.child.signalCode === null, `${what} exited:\n${outputOf(s)}`).to.equal(true);
}

/** The n of a stored effect(n) task, from its `args` column (a JSON array or `{ args: [...] }`). */
export function argOf(stored: unknown): number {
  const v = JSON.parse(String(stored)) as unknown;
  const list = Array.isArray(v) ? v : (v as { args: unknown[] }).args;
  return Number(list[0]);
}

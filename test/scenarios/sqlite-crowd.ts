/**
 * A crowd of processes on one SQLite file, shared by SQLITE-01 (test/scenarios/sqlite.test.ts,
 * 6 processes for 20 s in CI) and its soak SQLITE-02 (bench/scenarios/sqlite-soak.ts, 8 processes
 * for 60 s in the bench): `process-tasks` workers and applications enqueuing one task at a time
 * (fixtures.ts), while another program takes the file's write lock and holds it. What must hold is
 * checked by `checkCrowd`, the same for both: no process sees SQLITE_BUSY or "database is locked",
 * no enqueue fails, every task runs exactly once.
 */
import { expect } from 'chai';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { pollUntil } from '../helpers/processes.js';
import { REPO, spawnNode, TSX_LOADER, type RunResult, type Spawned } from '../helpers/project.js';
import { duplicates, enqueueOutcomes, expectRunning, outputOf, runsPerTask, type EnqueueOutcome } from './fixtures.js';

/** `node -e LOCKER FILE MS`: takes the write lock (BEGIN IMMEDIATE), holds it MS, commits, prints its wait. */
export const LOCKER = `
const sqlite3 = require(${JSON.stringify(path.join(REPO, 'node_modules', 'sqlite3'))});
const db = new sqlite3.Database(process.argv[1]);
db.configure('busyTimeout', 30000);
const t0 = Date.now();
db.exec('BEGIN IMMEDIATE', (err) => {
  if (err) throw err;
  process.stdout.write('locked after ' + (Date.now() - t0) + ' ms\\n');
  setTimeout(() => db.exec('COMMIT', (e) => { if (e) throw e; db.close(); }), Number(process.argv[2]));
});
`;

export const BUSY = /SQLITE_BUSY|database is locked/i;

/** A project directory whose `tasks.ts` is fixtures.ts's EFFECT_TASKS and `app.ts` its ENQUEUING_APP. */
export interface SqliteCrowd {
  dir: string;
  /** The bgtasks CLI the workers run (`dist/cli/index.js`). */
  cli: string;
  /** The bgtasks database: the CLI's default file in `dir`. */
  file: string;
  /** The effects database (one row per run of a task). */
  effects: Knex;
  close(): Promise<void>;
}

/** Creates the effects table and migrates the bgtasks file through the CLI. */
export async function prepareCrowd(dir: string, cli: string): Promise<SqliteCrowd> {
  const effects = knexFactory({ client: 'sqlite3', connection: { filename: path.join(dir, 'effects.sqlite3') }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
  try {
    await effects.schema.createTable('effects', (t) => {
      t.integer('n').notNullable();
      t.integer('pid').notNullable();
    });
    const m = await spawnNode([cli, 'migrate'], dir).exited;
    if (m.code !== 0) throw new Error(`bgtasks migrate exited with ${m.code}: ${m.stderr}${m.stdout}`);
  } catch (err) {
    await effects.destroy();
    throw err;
  }
  return { dir, cli, file: path.join(dir, 'bgtasks.sqlite3'), effects, close: () => effects.destroy() };
}

export interface CrowdRun {
  workers: number;
  /** Applications enqueuing one task at a time. */
  apps: number;
  /** Concurrency of each worker. */
  concurrency: number;
  /** How long the applications enqueue. */
  durationMs: number;
  /** When (from the start) the other program takes the write lock, and for how long. */
  locks: ReadonlyArray<{ atMs: number; holdMs: number }>;
  /** Told of every process started, so that its owner can kill it if the run is abandoned. */
  onSpawn(s: Spawned): void;
}

export interface CrowdResult {
  outcomes: EnqueueOutcome[];
  appResults: RunResult[];
  workers: Spawned[];
  workerResults: RunResult[];
  /** How many times each task ran (from the effect rows). */
  runs: Map<number, number>;
  /** Completed rows with failed_at set. */
  failed: number;
  /** What the lock holder printed, once per hold ("locked after N ms"). */
  lockerOutput: string[];
  /** From the first spawn to the stop of the applications. */
  elapsedMs: number;
}

/** `at` ms of the lock schedule: every `everyMs` from `firstMs`, each hold ending before `durationMs`. */
export function periodicLocks(durationMs: number, firstMs: number, everyMs: number, holdMs: number): Array<{ atMs: number; holdMs: number }> {
  const out: Array<{ atMs: number; holdMs: number }> = [];
  for (let at = firstMs; at + holdMs < durationMs; at += everyMs) out.push({ atMs: at, holdMs });
  return out;
}

/** Runs the crowd: workers and apps for `durationMs`, the locks on schedule; then drains and stops the workers. */
export async function runCrowd(c: SqliteCrowd, o: CrowdRun): Promise<CrowdResult> {
  const env = { EFFECTS_URL: `sqlite:${path.join(c.dir, 'effects.sqlite3')}`, EFFECTS_TABLE: 'effects', EFFECT_MS: '5' };
  const stopFile = path.join(c.dir, `stop-apps-${Date.now()}`);
  const started = Date.now();
  const appSeconds = String(Math.ceil(o.durationMs / 1000) + 60);
  const spawn = (s: Spawned) => (o.onSpawn(s), s);
  const workers = Array.from({ length: o.workers }, () =>
    spawn(spawnNode([c.cli, 'process-tasks', '--no-startup-delay', '--sleep', '0.1', '--concurrency', String(o.concurrency)], c.dir, env)),
  );
  const apps = Array.from({ length: o.apps }, (_, i) =>
    spawn(spawnNode(['--import', TSX_LOADER, 'app.ts', stopFile, '10000000', String(i * 10_000_000), appSeconds], c.dir, env)),
  );
  try {
    const lockerOutput: string[] = [];
    for (const lock of o.locks) {
      await pollUntil(() => Date.now() - started >= lock.atMs, `${lock.atMs / 1000} s into the run`, lock.atMs + 30_000, 50);
      const locker = await spawn(spawnNode(['-e', LOCKER, c.file, String(lock.holdMs)], c.dir)).exited;
      if (locker.code !== 0) throw new Error(`the lock holder exited with ${locker.code}: ${locker.stderr}`);
      lockerOutput.push(locker.stdout.trim());
    }
    await pollUntil(() => Date.now() - started >= o.durationMs, `${o.durationMs / 1000} s of run`, o.durationMs + 30_000, 50);
    writeFileSync(stopFile, '');
    const elapsedMs = Date.now() - started;
    const appResults = await Promise.all(apps.map((a) => a.exited));
    const outcomes = appResults.flatMap((r) => enqueueOutcomes(r.stdout));
    const db = knexFactory({
      client: 'sqlite3',
      connection: { filename: c.file },
      useNullAsDefault: true,
      pool: { min: 1, max: 1, afterCreate: (conn: { configure: (k: string, v: number) => void }, done: (e: Error | null, x: unknown) => void) => (conn.configure('busyTimeout', 30_000), done(null, conn)) },
    });
    try {
      const count = async (table: string, failed = false) => {
        const q = db(table).count({ n: '*' });
        if (failed) q.whereNotNull('failed_at');
        return Number(((await q) as Array<{ n: unknown }>)[0]!.n);
      };
      await pollUntil(async () => (await count('bgtasks_tasks')) === 0, 'every enqueued task to finish', 60_000, 100);
      for (const w of workers) expectRunning(w, 'a worker');
      for (const w of workers) w.child.kill('SIGTERM');
      const workerResults = await Promise.all(workers.map((w) => w.exited));
      return {
        outcomes,
        appResults,
        workers,
        workerResults,
        runs: runsPerTask(await c.effects('effects').select('n')),
        failed: await count('bgtasks_completed_tasks', true),
        lockerOutput,
        elapsedMs,
      };
    } finally {
      await db.destroy();
    }
  } finally {
    if (!existsSync(stopFile)) writeFileSync(stopFile, '');
  }
}

/**
 * What must hold after a crowd run: no process printed SQLITE_BUSY or "database is locked", no
 * enqueue failed, at least `minEnqueues` were made, the slowest waited less than `maxEnqueueMs`
 * (the held lock, within the busy timeout), every enqueued task ran exactly once, none failed,
 * and the workers exited 0 with nothing on stderr and no ERROR line.
 */
export function checkCrowd(r: CrowdResult, bounds: { minEnqueues: number; maxEnqueueMs: number }): void {
  for (const [i, a] of r.appResults.entries()) {
    expect(a.code, `app ${i}: ${a.stderr}`).to.equal(0);
    expect(a.stderr + a.stdout, `app ${i}`).not.to.match(BUSY);
  }
  for (const [i, w] of r.workerResults.entries()) {
    expect(w.code, `worker ${i}: ${outputOf(r.workers[i]!)}`).to.equal(0);
    expect(w.stderr, `worker ${i} stderr`).to.equal('');
    expect(w.stdout, `worker ${i}`).not.to.match(BUSY);
    expect(w.stdout, `worker ${i}`).not.to.match(/ ERROR /);
  }
  expect(r.outcomes.filter((o) => !o.ok), 'failed enqueues').to.deep.equal([]);
  expect(r.outcomes.length, `enqueues in ${Math.round(r.elapsedMs / 1000)} s`).to.be.greaterThan(bounds.minEnqueues);
  expect(r.runs.size).to.equal(r.outcomes.length);
  expect(r.outcomes.filter((o) => !r.runs.has(o.n)).map((o) => o.n), 'enqueued tasks that never ran').to.deep.equal([]);
  expect(duplicates(r.runs), 'tasks that ran more than once').to.deep.equal([]);
  expect(r.failed, 'failed tasks').to.equal(0);
  expect(Math.max(...r.outcomes.map((o) => o.ms))).to.be.lessThan(bounds.maxEnqueueMs);
}

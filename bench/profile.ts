/**
 * Where the time goes, for the biggest gaps of issue 8: processing at concurrency 16 and enqueue.
 * `node --import tsx bench/profile.ts [--db sqlite,mysql,postgres] [--n 10000] [--concurrency 16] [--prefetch P]`
 *
 * Processing: the real CLI (`process-tasks --batch`) with `--cpu-prof` and every statement timed
 * inside it (query-timer-preload.ts): statements per task by shape, round trips, the database
 * connection's busy time, and the CPU profile by package and function.
 * Enqueue: the same for single calls, bulk() and the bare knex baseline, profiled in this process.
 * Cold start: one `process-tasks --batch` CPU-profiled from its first instruction, and the
 * statements it sends. `--only process,enqueue,cold` picks the parts.
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchNoop, enqueueDue, releaseLibrary, useTables } from './lib/api.js';
import { ensureBuilt } from './lib/build.js';
import { makeProject, queryLogArgs, startWorker, succeeded, type BenchProject } from './lib/cli.js';
import { formatSummary, summariseProfile, type CpuProfile } from './lib/cpu-profile.js';
import { BenchTables, configuredTargets, DB_NAMES, dropAllLive, type DbName, type DbTarget } from './lib/databases.js';
import { queryTimer, summarise, type QueryRecord } from './lib/query-timer.js';
import { expectAllDone, runWindow } from './lib/results.js';
import { perSecond } from './lib/stats.js';
import { timed } from './lib/timing.js';

const log = (line = '') => process.stdout.write(`${line}\n`);

function statementTable(records: readonly QueryRecord[], perUnit: number, unit: string): string {
  const rows = summarise(records).slice(0, 12);
  const lines = rows.map(
    (s) =>
      `    ${(s.count / perUnit).toFixed(3).padStart(7)} per ${unit}  ${(s.totalMs / s.count).toFixed(3).padStart(7)} ms avg  ${s.totalMs.toFixed(0).padStart(6)} ms total  ${s.shape.slice(0, 150)}`,
  );
  const total = records.reduce((a, r) => a + r.ms, 0);
  return [`    ${(records.length / perUnit).toFixed(2)} statements per ${unit}, ${total.toFixed(0)} ms summed:`, ...lines].join('\n');
}

/** Milliseconds during which at least one statement was in flight (overlaps merged). */
function busyMs(records: readonly QueryRecord[]): number {
  const spans = records.map((r) => [r.at, r.at + r.ms] as const).sort((a, b) => a[0] - b[0]);
  let busy = 0;
  let end = -Infinity;
  for (const [s, e] of spans) {
    if (s > end) {
      busy += e - s;
      end = e;
    } else if (e > end) {
      busy += e - end;
      end = e;
    }
  }
  return busy;
}

async function profileProcessing(target: DbTarget, project: BenchProject, workDir: string, n: number, concurrency: number, prefetch: number | null): Promise<void> {
  const t = await BenchTables.create(target, workDir, 'profile');
  useTables(t);
  try {
    await enqueueDue(n);
    const profDir = path.join(workDir, `cpu-${t.prefix}`);
    const logFile = path.join(workDir, `queries-${t.prefix}.json`);
    const q = queryLogArgs(logFile);
    const args = ['--batch', '--no-startup-delay', '-q', '--concurrency', String(concurrency), ...(prefetch === null ? [] : ['--prefetch', String(prefetch)])];
    const w = startWorker(project, t, args, { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200', ...q.nodeArgs], env: q.env });
    await succeeded(w, 'profile');
    const win = await runWindow(t);
    expectAllDone(win, n, 'profile');
    const windowMs = win.lastFinishMs - win.firstClaimMs;
    const all = JSON.parse(readFileSync(logFile, 'utf8')) as QueryRecord[];
    // Statements of the run proper: from the first claim on (start-up queries are not per task).
    const firstClaim = all.findIndex((r) => /skip locked|"locked_by" = \?/i.test(r.shape) && !/^select count/i.test(r.shape));
    const records = firstClaim >= 0 ? all.slice(firstClaim) : all;
    log(`  processing ${n} tasks, concurrency ${concurrency}${prefetch === null ? '' : `, prefetch ${prefetch}`}: ${perSecond(n, windowMs).toFixed(0)} tasks/s while profiled (window ${windowMs} ms)`);
    log(statementTable(records, n, 'task'));
    const busy = busyMs(records);
    log(`    some statement in flight ${busy.toFixed(0)} ms of the ${(records.length ? records[records.length - 1]!.at + records[records.length - 1]!.ms - records[0]!.at : 0).toFixed(0)} ms the statements span (${((busy / Math.max(1, windowMs)) * 100).toFixed(0)} % of the window)`);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) log(formatSummary(summariseProfile(JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile), '    '));
  } finally {
    await releaseLibrary();
    await t.drop();
  }
}

/** One cold start (`process-tasks --batch` with one due task), CPU-profiled from the first instruction. */
async function profileColdStart(target: DbTarget, project: BenchProject, workDir: string): Promise<void> {
  const t = await BenchTables.create(target, workDir, 'profile-cold');
  useTables(t);
  try {
    const ref = await benchNoop(0);
    const profDir = path.join(workDir, `cold-${t.prefix}`);
    const logFile = path.join(workDir, `cold-queries-${t.prefix}.json`);
    const q = queryLogArgs(logFile);
    // No --import preload here: it would add tsx's start-up to what is measured. Queries are
    // counted in a second, instrumented run.
    const w = startWorker(project, t, ['--no-startup-delay', '--batch', '-q'], { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '100'] });
    await succeeded(w, 'cold start');
    const row = (await t.knex(t.completed).where('task_id', ref.id).first('started_at')) as { started_at: unknown };
    log(`  cold start (profiled, so slower): first claim after ${Number(row.started_at) - w.spawnedAtMs} ms`);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) log(formatSummary(summariseProfile(JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile), '    '));
    await benchNoop(1);
    await succeeded(startWorker(project, t, ['--no-startup-delay', '--batch', '-q'], { nodeArgs: q.nodeArgs, env: q.env }), 'cold start');
    const records = JSON.parse(readFileSync(logFile, 'utf8')) as QueryRecord[];
    log(`    statements before and around the first claim (of ${records.length}):`);
    for (const r of records.slice(0, 20)) log(`      ${r.ms.toFixed(2).padStart(7)} ms  ${r.shape.slice(0, 140)}`);
  } finally {
    await releaseLibrary();
    await t.drop();
  }
}

async function profiled<T>(fn: () => Promise<T>): Promise<{ value: T; profile: CpuProfile; ms: number }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const r = await timed(fn);
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  return { value: r.value, profile: profile as unknown as CpuProfile, ms: r.ms };
}

async function profileEnqueue(target: DbTarget, workDir: string, n: number): Promise<void> {
  const t = await BenchTables.create(target, workDir, 'profile-enq');
  useTables(t);
  const timer = queryTimer();
  try {
    timer.captureFirst((q) => /^insert into/i.test(q.sql) && q.sql.includes(t.tasks));
    await benchNoop(0);
    const captured = timer.takeCaptured()!;
    const columns = /^insert into\s+\S+\s*\(([^)]*)\)/i.exec(captured.sql)![1]!.split(',').map((c) => c.trim().replace(/^["`]|["`]$/g, ''));
    const row = Object.fromEntries(columns.map((c, i) => [c, captured.bindings[i]]));
    const cases: Array<[string, () => Promise<unknown>]> = [
      [
        'single calls',
        async () => {
          for (let i = 0; i < n; i++) await benchNoop(i);
        },
      ],
      [
        'bare knex insert',
        async () => {
          for (let i = 0; i < n; i++) await t.knex(t.tasks).insert(row);
        },
      ],
      ['bulk()', () => benchNoop.bulk(Array.from({ length: n * 5 }, (_, i): [number] => [i]))],
    ];
    for (const [name, fn] of cases) {
      await t.empty();
      timer.start();
      const r = await profiled(fn);
      const records = timer.stop();
      const count = name === 'bulk()' ? n * 5 : n;
      log(`  enqueue, ${name}: ${perSecond(count, r.ms).toFixed(0)}/s while profiled (${r.ms.toFixed(0)} ms for ${count})`);
      log(statementTable(records, count, 'task'));
      log(`    statements in flight ${busyMs(records).toFixed(0)} ms of ${r.ms.toFixed(0)} ms`);
      log(formatSummary(summariseProfile(r.profile, 12), '    '));
    }
  } finally {
    timer.stop();
    await releaseLibrary();
    await t.drop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { db: { type: 'string' }, n: { type: 'string' }, concurrency: { type: 'string' }, prefetch: { type: 'string' }, only: { type: 'string' } },
  });
  const dbs = values.db ? (values.db.split(',') as DbName[]).filter((d) => DB_NAMES.includes(d)) : null;
  const n = Number(values.n ?? 10_000);
  const concurrency = Number(values.concurrency ?? 16);
  const prefetch = values.prefetch === undefined ? null : Number(values.prefetch);
  const only = values.only ?? 'process,enqueue,cold';
  ensureBuilt(log);
  const { targets, notices } = configuredTargets(dbs);
  for (const x of notices) log(`NOTICE: ${x}`);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-profile-'));
  const project = makeProject();
  try {
    for (const target of targets) {
      log(`\n== ${target.label}`);
      if (only.includes('process')) await profileProcessing(target, project, workDir, n, concurrency, prefetch);
      if (only.includes('enqueue')) await profileEnqueue(target, workDir, Math.min(n, 2000));
      if (only.includes('cold')) await profileColdStart(target, project, workDir);
    }
  } finally {
    await dropAllLive();
    project.remove();
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();
process.exit();

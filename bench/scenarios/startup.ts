/**
 * Issue 19's start-up figures, each run in a fresh process, as a user meets them:
 * - `worker.start()` → first claim: an in-process worker (concurrency 16, `--batch`-like) in a
 *   Node process that has just imported the library; the first claim is the earliest claimed
 *   row's started_at (the claim time the worker wrote) minus the epoch ms just before start().
 *   First connection, migration check, registry row and queue states count; the import does not
 *   (knex and the driver load on first use, so they count too). Again after the application has
 *   used the library (a listTasks() call: knex loaded, connection open), which leaves the
 *   start-up sequence itself.
 * - The CLI as typed ÷ the same worker in process: N due no-op tasks, run once by
 *   `process-tasks --batch --concurrency 16` exactly as typed (default logging, to a file; the
 *   default start-up delay rule; task file in plain JS, as an application ships it), and once by
 *   that worker in process. Each rate is N ÷ (last finished_at − the start: the spawn for the CLI,
 *   the line before the library's import in process), so start-up counts on both sides.
 * The two kinds of run alternate (in process, CLI, in process, …).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { enqueueDue, releaseLibrary, useTables } from '../lib/api.js';
import type { BenchProject } from '../lib/cli.js';
import { BenchTables } from '../lib/databases.js';
import { expectAllDone, runWindow } from '../lib/results.js';
import { count, measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { median, perSecond } from '../lib/stats.js';

const CONCURRENCY = 16;

const TASK_FILE = 'bench-tasks.mjs';
const TASKS_JS = `import { background } from 'bgtasks';

export const benchNoop = background(function benchNoop(n) {
  return n;
});
`;

/** The in-process worker: prints the epoch ms before the import and before start(). */
const PROBE_FILE = 'start-probe.mjs';
const PROBE_JS = `const t0 = Date.now();
const { background, closeConnections, configure, createLogger, createWorker, listTasks } = await import('bgtasks');
background(function benchNoop(n) {
  return n;
});
const [url, prefix, concurrency, warm] = process.argv.slice(2);
configure({ database: url, tablePrefix: prefix });
// 'warm': the application used the library first (knex loaded, its connection open).
if (warm === 'warm') await listTasks({ limit: 1 });
const worker = createWorker({ concurrency: Number(concurrency), batch: true, logger: createLogger({ level: 'warn' }) });
const startCalled = Date.now();
await worker.start();
const summary = await worker.done;
await closeConnections();
process.stdout.write(JSON.stringify({ t0, startCalled, succeeded: summary.succeeded }) + '\\n');
`;

interface Child {
  code: number | null;
  stdout: string;
}

function run(args: string[], cwd: string, stdio: 'pipe' | number): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', stdio, stdio] });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

async function inProcess(project: BenchProject, t: BenchTables, warm = false): Promise<{ t0: number; startCalled: number }> {
  const r = await run([PROBE_FILE, t.url, t.prefix, String(CONCURRENCY), warm ? 'warm' : 'cold'], project.dir, 'pipe');
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0 || !line.startsWith('{')) throw new Error(`in-process worker exited with ${r.code}\n${r.stdout.slice(-4000)}`);
  return JSON.parse(line) as { t0: number; startCalled: number };
}

async function asTyped(project: BenchProject, t: BenchTables, logFile: string): Promise<{ spawnedAtMs: number; logLines: number }> {
  const out = openSync(logFile, 'w');
  const spawnedAtMs = Date.now();
  const args = [project.cli, 'process-tasks', '--batch', '--concurrency', String(CONCURRENCY), '--database', t.url, '--table-prefix', t.prefix, '--task-files', TASK_FILE];
  const r = await run(args, project.dir, out).finally(() => closeSync(out));
  const log = readFileSync(logFile, 'utf8');
  if (r.code !== 0) throw new Error(`process-tasks exited with ${r.code}\n${log.slice(-4000)}`);
  return { spawnedAtMs, logLines: log.split('\n').filter(Boolean).length };
}

export const startupScenario: Scenario = {
  name: 'startup',
  title: 'Start-up: worker.start() to first claim, and the CLI as typed against the worker in process',
  method: (s) =>
    `Each run in a fresh Node process. start() → first claim: \`createWorker({ concurrency: ${CONCURRENCY}, batch: true })\` just after the library's import; ` +
    'the earliest started_at of the claimed rows − epoch ms just before start(); "warm": after a listTasks() call (knex loaded, connection open). ' +
    `CLI as typed ÷ in process: ${count(s.process)} due no-op tasks, run by \`process-tasks --batch --concurrency ${CONCURRENCY}\` as typed ` +
    '(default logging to a file, default start-up delay rule, a JS task file), and by the same worker in process; each rate is N ÷ (last finished_at − start), ' +
    'the start being the spawn for the CLI and the line before the import in process. The two alternate.',
  async run(ctx: Context): Promise<Measurement[]> {
    const n = ctx.sizes.process;
    const db = ctx.target.name;
    writeFileSync(path.join(ctx.project.dir, TASK_FILE), TASKS_JS);
    writeFileSync(path.join(ctx.project.dir, PROBE_FILE), PROBE_JS);
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'startup');
    useTables(t);
    const toClaim: number[] = [];
    const toClaimWarm: number[] = [];
    const embedded: number[] = [];
    const typed: number[] = [];
    try {
      for (let r = 0; r < ctx.runs; r++) {
        await t.empty();
        await enqueueDue(n);
        const p = await inProcess(ctx.project, t);
        let w = await runWindow(t);
        expectAllDone(w, n, 'startup, in process');
        toClaim.push(w.firstClaimMs - p.startCalled);
        embedded.push(perSecond(n, w.lastFinishMs - p.t0));

        await t.empty();
        await enqueueDue(n);
        const c = await asTyped(ctx.project, t, path.join(ctx.workDir, `startup-cli-${r}.log`));
        w = await runWindow(t);
        expectAllDone(w, n, 'startup, CLI as typed');
        typed.push(perSecond(n, w.lastFinishMs - c.spawnedAtMs));

        // One due task: start() → first claim after the application's first use of the library.
        await t.empty();
        await enqueueDue(1);
        const warm = await inProcess(ctx.project, t, true);
        toClaimWarm.push((await runWindow(t)).firstClaimMs - warm.startCalled);
        ctx.log(
          `  run ${r + 1}: start() → first claim ${toClaim[r]} ms (${toClaimWarm[r]} ms with knex loaded and connected); in process ${Math.round(embedded[r]!)} tasks/s, ` +
            `CLI as typed ${Math.round(typed[r]!)} tasks/s (${c.logLines} log lines)`,
        );
      }
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    const ratio = median(typed) / median(embedded);
    return [
      measured('startup', 'start-to-claim', 'worker.start() → first claim (fresh process, concurrency 16)', db, 'ms', toClaim),
      measured('startup', 'start-to-claim-warm', 'worker.start() → first claim, after the application used the library (knex loaded, connected)', db, 'ms', toClaimWarm),
      measured('startup', 'in-process', `${count(n)} tasks, worker in process, from before the import`, db, 'tasks/s', embedded),
      measured('startup', 'cli-typed', `${count(n)} tasks, \`process-tasks --batch --concurrency 16\` as typed, from the spawn`, db, 'tasks/s', typed),
      measured('startup', 'cli-ratio', 'CLI as typed ÷ in process (ratio of the medians)', db, 'ratio', [ratio]),
    ];
  },
};

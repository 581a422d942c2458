/**
 * Where a keyed claim's time goes (issue 17's per-key target): an in-process worker (concurrency
 * 16) runs `--n` tasks spread over 100 keys with a per-key limit of 1, with every statement timed;
 * then the same count of unlimited tasks. Prints tasks/s of each, claims, tasks per claim and the
 * statements per task by shape.
 * `node --import tsx bench/profile-flow.ts [--db sqlite,mysql,postgres] [--n 5000]`
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createWorker, silentLogger } from '../core/index.js';
import { enqueueDue, releaseLibrary, useTables } from './lib/api.js';
import { BenchTables, configuredTargets, dropAllLive, type DbName } from './lib/databases.js';
import { queryTimer, summarise } from './lib/query-timer.js';
import { benchKeyed } from './scenarios/flow.js';

const log = (line = '') => process.stdout.write(`${line}\n`);

async function run(n: number, label: string): Promise<void> {
  const timer = queryTimer();
  const worker = createWorker({ concurrency: 16, maxTasks: n, sleep: 0.01, logger: silentLogger });
  const started = performance.now();
  timer.start();
  await worker.start();
  const summary = await worker.done;
  const records = timer.stop();
  const ms = performance.now() - started;
  if (summary.succeeded !== n) throw new Error(`ran ${summary.succeeded} of ${n}`);
  const rows = summarise(records);
  const claims = rows.filter((r) => /^UPDATE .*locked_by/i.test(r.shape) || /RETURNING/i.test(r.shape)).reduce((a, r) => a + r.count, 0);
  log(`  ${label}: ${((n / ms) * 1000).toFixed(0)} tasks/s, ${(records.length / n).toFixed(2)} statements per task, ${records.reduce((a, r) => a + r.ms, 0).toFixed(0)} ms summed of ${ms.toFixed(0)} ms wall; claim statements ${claims}`);
  for (const s of rows.slice(0, 14)) {
    log(`    ${(s.count / n).toFixed(3).padStart(7)}/task ${(s.totalMs / s.count).toFixed(3).padStart(7)} ms avg ${s.maxMs.toFixed(1).padStart(6)} max ${s.totalMs.toFixed(0).padStart(6)} ms  ${s.shape.slice(0, 220)}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { db: { type: 'string' }, n: { type: 'string' }, only: { type: 'string' } } });
  const n = Number(values.n ?? 5000);
  const { targets } = configuredTargets(values.db ? (values.db.split(',') as DbName[]) : null);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-flowprof-'));
  try {
    for (const target of targets) {
      log(`== ${target.name}`);
      const t = await BenchTables.create(target, workDir, 'flowprof');
      useTables(t);
      try {
        if (values.only !== 'keyed') {
          await enqueueDue(n);
          await run(n, 'unlimited');
        }
        for (let i = 0; i < n; i += 10_000) await benchKeyed.bulk(Array.from({ length: Math.min(10_000, n - i) }, (_, k): [number] => [i + k]));
        await run(n, 'keyed');
      } finally {
        await releaseLibrary();
        await t.drop();
      }
    }
  } finally {
    await dropAllLive();
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();

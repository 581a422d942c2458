/**
 * Scenario 6, cold start: from spawning `process-tasks --no-startup-delay --batch` (whose tasks.ts
 * is loaded through tsx) to its first claim, read from the claimed row: started_at (the claim
 * time the worker wrote) minus the epoch ms just before spawn. A bare `node -e 0` is timed
 * beside it, as the floor no CLI can beat on this machine.
 */
import { spawn } from 'node:child_process';
import { benchNoop, releaseLibrary, useTables } from '../lib/api.js';
import { startWorker, succeeded } from '../lib/cli.js';
import { BenchTables } from '../lib/databases.js';
import { measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';

function bareNodeMs(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(performance.now() - t0));
  });
}

export const coldStartScenario: Scenario = {
  name: 'cold-start',
  title: 'Cold start',
  method: () =>
    'One due task, then `process-tasks --no-startup-delay --batch -q` spawned in the temporary project (tasks.ts loaded through tsx). ' +
    'First claim = the row\'s started_at (written by the worker at its claim) − epoch ms just before spawn; exit = spawn → process exit. ' +
    '`node -e 0` is the floor: Node itself starting and exiting.',
  async run(ctx: Context): Promise<Measurement[]> {
    const db = ctx.target.name;
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'cold');
    useTables(t);
    const firstClaim: number[] = [];
    const exit: number[] = [];
    const bare: number[] = [];
    try {
      await bareNodeMs(); // the first spawn pays for the page cache
      for (let r = 0; r < ctx.runs; r++) {
        await t.empty();
        const ref = await benchNoop(r);
        const w = startWorker(ctx.project, t, ['--no-startup-delay', '--batch', '-q']);
        const e = await succeeded(w, 'cold start');
        const row = (await t.knex(t.completed).where('task_id', ref.id).first('started_at')) as { started_at: unknown } | undefined;
        if (!row) throw new Error('cold start: the task was not run');
        firstClaim.push(Number(row.started_at) - w.spawnedAtMs);
        exit.push(e.atPerf - w.spawnedAtPerf);
        bare.push(await bareNodeMs());
        ctx.log(`  run ${r + 1}: first claim after ${firstClaim[r]} ms, exit after ${exit[r]!.toFixed(0)} ms (node -e 0: ${bare[r]!.toFixed(0)} ms)`);
      }
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    return [
      measured('cold-start', 'first-claim', 'process start → first claim', db, 'ms', firstClaim),
      measured('cold-start', 'exit', 'process start → exit (one task, --batch)', db, 'ms', exit),
      measured('cold-start', 'node', '`node -e 0` start → exit (floor)', db, 'ms', bare),
    ];
  },
};

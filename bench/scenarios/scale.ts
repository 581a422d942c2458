/**
 * Scenario 4, scale. (a) Claim cost: an in-process worker (public createWorker, concurrency 1)
 * runs M due tasks on an empty table, then again with a million pending not-due rows beside
 * them; each claim is timed. (b) Prune: a million results that finished 60 days ago are removed
 * with `bgtasks prune-results --days 30`, every statement timed inside the CLI; while that
 * command does not exist yet, the bench's own batched DELETE by primary-key ranges stands in
 * (labelled as such).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { releaseLibrary, useTables } from '../lib/api.js';
import { medianClaimMs } from '../lib/claim-timer.js';
import { cliHasCommand, queryLogArgs, startCli, succeeded } from '../lib/cli.js';
import { BenchTables, type DbName } from '../lib/databases.js';
import type { QueryRecord } from '../lib/query-timer.js';
import { insertNotDue, insertOldResults } from '../lib/rows.js';
import { count, measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { timed } from '../lib/timing.js';

const DAY_MS = 86_400_000;
/** Ids per DELETE of the stand-in prune: small enough that one statement stays short everywhere. */
const FALLBACK_BATCH = 5_000;

/** Statistics as a server keeps them in steady state (a bulk load is not yet analysed). */
async function analyse(t: BenchTables): Promise<void> {
  if (t.db === 'postgres') await t.knex.raw(`ANALYZE ${t.tasks}, ${t.completed}`);
  if (t.db === 'mysql') await t.knex.raw(`ANALYZE TABLE ${t.tasks}, ${t.completed}`);
}

interface PruneResult {
  totalMs: number;
  /** The longest statement that writes (takes locks). */
  longestWriteMs: number;
  /** The longest statement of any kind (reads take no locks under MVCC or SQLite's WAL). */
  longestAnyMs: number;
  statements: number;
}

const WRITES = /^(delete|update|insert)\b/i;

async function pruneWithCli(ctx: Context, t: BenchTables, run: number): Promise<PruneResult> {
  const logFile = path.join(ctx.workDir, `prune-${t.prefix}${run}.json`);
  const w = startCli(ctx.project, t, 'prune-results', ['--days', '30'], queryLogArgs(logFile));
  const e = await succeeded(w, 'prune-results');
  const records = JSON.parse(readFileSync(logFile, 'utf8')) as QueryRecord[];
  const writes = records.filter((r) => WRITES.test(r.shape));
  return {
    totalMs: e.atPerf - w.spawnedAtPerf,
    longestWriteMs: Math.max(0, ...writes.map((r) => r.ms)),
    longestAnyMs: Math.max(0, ...records.map((r) => r.ms)),
    statements: writes.length,
  };
}

async function pruneFallback(t: BenchTables, nowMs: number): Promise<PruneResult> {
  const cutoff = nowMs - 30 * DAY_MS;
  const [b] = (await t.knex(t.completed).min({ lo: 'task_id' }).max({ hi: 'task_id' })) as Array<{ lo: unknown; hi: unknown }>;
  const lo = Number(b?.lo);
  const hi = Number(b?.hi);
  let longest = 0;
  let statements = 0;
  const total = await timed(async () => {
    for (let from = lo; from <= hi; from += FALLBACK_BATCH) {
      const one = await timed(() =>
        t.knex(t.completed).where('task_id', '>=', from).where('task_id', '<', from + FALLBACK_BATCH).where('finished_at', '<', cutoff).del(),
      );
      longest = Math.max(longest, one.ms);
      statements++;
    }
  });
  return { totalMs: total.ms, longestWriteMs: longest, longestAnyMs: longest, statements };
}

export const scaleScenario: Scenario = {
  name: 'scale',
  title: 'Scale: claims beside a large backlog, and pruning results',
  method: (s) =>
    `Claim: an in-process worker (createWorker, concurrency 1) runs ${s.scaleClaims} due tasks and each Store.claim call is timed (the median is the run's figure); ` +
    `first on an empty table, then with ${count(s.scaleRows)} pending rows due over the next days beside them, then with such rows of priority 1 instead, generated afresh ` +
    '(the due tasks have 0, so in the claim index, which leads with priority, every not-due row comes first; no target, but the same question). ' +
    'The backlog is generated straight into the table by ' +
    'chunked `INSERT … SELECT` from a cross join of a digits table (100,000 rows per statement; a real enqueued row is the template), then ANALYZE on MariaDB/PostgreSQL, ' +
    `as their automatic statistics would in a steady state. Prune: ${count(s.pruneRows)} results finished 60 days ago, generated the same way, are removed by ` +
    '`bgtasks prune-results --days 30`, every statement timed inside the CLI; "total" is spawn → exit; the target applies to statements that write (DELETE/UPDATE/INSERT hold locks; reads take none under MVCC or SQLite\'s WAL). If the command does not exist yet, the bench\'s own DELETE of ' +
    `${FALLBACK_BATCH.toLocaleString('en-US')} task ids per statement (autocommit) stands in, and the figures say so.`,
  async run(ctx: Context): Promise<Measurement[]> {
    const { scaleRows, scaleClaims, pruneRows } = ctx.sizes;
    const db: DbName = ctx.target.name;
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'scale');
    useTables(t);
    const empty: number[] = [];
    const full: number[] = [];
    const above: number[] = [];
    const pruneTotal: number[] = [];
    const pruneLongest: number[] = [];
    const pruneLongestAny: number[] = [];
    const hasPrune = cliHasCommand(ctx.project, 'prune-results');
    let statements = 0;
    try {
      for (let r = 0; r < ctx.runs; r++) empty.push(await medianClaimMs('scale', t, scaleClaims));
      const gen = await timed(async () => {
        await insertNotDue(t, scaleRows, Date.now());
        await analyse(t);
      });
      ctx.log(`  generated ${count(scaleRows)} not-due rows in ${(gen.ms / 1000).toFixed(1)} s`);
      for (let r = 0; r < ctx.runs; r++) {
        full.push(await medianClaimMs('scale', t, scaleClaims));
        ctx.log(`  claim run ${r + 1}: ${empty[r]!.toFixed(2)} ms empty, ${full[r]!.toFixed(2)} ms beside ${count(scaleRows)}`);
      }
      // The same backlog at a higher priority than the due tasks: the claim index leads with
      // priority, so this is the case where not-due rows come first in index order. Generated
      // afresh: raising the rows' priority in place (an UPDATE of a million index keys) left a
      // million entries waiting for MariaDB's purge in the claim index, which the claims timed
      // next walked until purge caught up (tens of seconds), a cost of the bench's set-up.
      await t.knex(t.tasks).truncate();
      await insertNotDue(t, scaleRows, Date.now(), 1);
      await analyse(t);
      for (let r = 0; r < ctx.runs; r++) {
        above.push(await medianClaimMs('scale', t, scaleClaims));
        ctx.log(`  claim run ${r + 1}: ${above[r]!.toFixed(2)} ms beside ${count(scaleRows)} of higher priority`);
      }
      for (let r = 0; r < ctx.runs; r++) {
        await t.knex(t.completed).truncate();
        const now = Date.now();
        const g = await timed(async () => {
          await insertOldResults(t, pruneRows, now, 60);
          await analyse(t);
        });
        const p = hasPrune ? await pruneWithCli(ctx, t, r) : await pruneFallback(t, now);
        const left = await t.count(t.completed);
        if (left !== 0) throw new Error(`scale: the prune left ${left} of ${pruneRows} old results`);
        pruneTotal.push(p.totalMs / 1000);
        pruneLongest.push(p.longestWriteMs);
        pruneLongestAny.push(p.longestAnyMs);
        statements = p.statements;
        ctx.log(`  prune run ${r + 1}: generated in ${(g.ms / 1000).toFixed(1)} s; pruned in ${(p.totalMs / 1000).toFixed(2)} s, ${p.statements} writes, longest write ${p.longestWriteMs.toFixed(1)} ms, longest statement ${p.longestAnyMs.toFixed(1)} ms`);
      }
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    const how = hasPrune
      ? `bgtasks prune-results --days 30 (${statements} writing statements)`
      : `prune-results does not exist yet: the bench's own batched DELETE (${FALLBACK_BATCH.toLocaleString('en-US')} ids per statement, ${statements} statements) stands in`;
    const label = hasPrune ? 'prune-results' : 'stand-in batched DELETE';
    return [
      measured('scale', 'claim-empty', 'claim, empty table', db, 'ms', empty),
      measured('scale', 'claim-full', `claim, ${count(scaleRows)} not-due rows`, db, 'ms', full),
      measured('scale', 'claim-ratio', `claim, ${count(scaleRows)} not-due ÷ empty`, db, 'ratio', full.map((v, i) => v / empty[i]!)),
      measured('scale', 'claim-above', `claim, ${count(scaleRows)} not-due rows of higher priority`, db, 'ms', above),
      measured('scale', 'claim-above-ratio', `claim, ${count(scaleRows)} not-due of higher priority ÷ empty`, db, 'ratio', above.map((v, i) => v / empty[i]!)),
      measured('scale', 'prune-total', `prune ${count(pruneRows)} results (${label}): total`, db, 's', pruneTotal),
      measured('scale', 'prune-longest', `prune ${count(pruneRows)} results (${label}): longest writing statement`, db, 'ms', pruneLongest, how),
      measured('scale', 'prune-longest-any', `prune ${count(pruneRows)} results (${label}): longest statement incl. reads`, db, 'ms', pruneLongestAny),
    ];
  },
};

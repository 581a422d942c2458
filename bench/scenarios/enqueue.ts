/**
 * Scenario 1, enqueue: N tasks one `await task(i)` at a time; the same N with one `task.bulk()`
 * call; and, as the baseline of the "within 80 %" target, the same row inserted N times by a bare
 * `knex(table).insert(row)` loop on a connection set up exactly like the library's.
 */
import { benchNoop, releaseLibrary, useTables } from '../lib/api.js';
import { BenchTables } from '../lib/databases.js';
import { queryTimer } from '../lib/query-timer.js';
import { count, measured, type Context, type Measurement, type Scenario } from '../lib/scenario.js';
import { perSecond } from '../lib/stats.js';
import { timed } from '../lib/timing.js';

/** The row the library sends for one enqueue, as column → value (from its own INSERT). */
/** Calls of each kind made, untimed, before the measured runs. */
const WARM_UP = 2_000;
/** Single calls (then bare inserts) per block of the interleaved loops. */
const BLOCK = 500;

async function libraryRow(t: BenchTables): Promise<Record<string, unknown>> {
  const timer = queryTimer();
  timer.captureFirst((q) => /^insert into/i.test(q.sql) && q.sql.includes(t.tasks));
  await benchNoop(0);
  const q = timer.takeCaptured();
  if (!q) throw new Error('enqueue: could not see the INSERT the library sent');
  const list = /^insert into\s+\S+\s*\(([^)]*)\)/i.exec(q.sql)?.[1];
  if (!list) throw new Error(`enqueue: cannot read the columns of ${q.sql}`);
  const columns = list.split(',').map((c) => c.trim().replace(/^["`]|["`]$/g, ''));
  return Object.fromEntries(columns.map((c, i) => [c, q.bindings[i]]));
}

export const enqueueScenario: Scenario = {
  name: 'enqueue',
  title: 'Enqueue',
  method: (s) =>
    `${count(s.enqueue)} tasks enqueued from this process through the public API: \`await benchNoop(i)\` in a loop (one call, one statement, one autocommit at a time), ` +
    `and one \`benchNoop.bulk(calls)\` with ${count(s.enqueue)} calls. The baseline is the row the library sends for one enqueue (captured from its own INSERT), ` +
    'inserted by a bare `knex(table).insert(row)` loop on a knex instance configured exactly like the library\'s pool. ' +
    `Single calls and bare inserts alternate in blocks of ${count(BLOCK)} on one emptied table (each figure sums its own blocks); bulk() runs after them on an emptied table. ` +
    `Before the runs, an untimed warm-up of ${count(WARM_UP)} single calls and ${count(WARM_UP)} bare inserts.`,
  async run(ctx: Context): Promise<Measurement[]> {
    const n = ctx.sizes.enqueue;
    const db = ctx.target.name;
    const t = await BenchTables.create(ctx.target, ctx.workDir, 'enqueue');
    useTables(t);
    const single: number[] = [];
    const bulk: number[] = [];
    const bare: number[] = [];
    try {
      const row = await libraryRow(t);
      const calls = Array.from({ length: n }, (_, i): [number] => [i]);
      // Untimed warm-up of both loops: otherwise the first run measures the library's code before
      // V8 has optimised it, against knex code the library's own inserts have already warmed.
      const warm = Math.min(n, WARM_UP);
      for (let i = 0; i < warm; i++) await benchNoop(i);
      for (let i = 0; i < warm; i++) await t.knex(t.tasks).insert(row);
      for (let r = 0; r < ctx.runs; r++) {
        // Single calls and bare inserts alternate in blocks on one table, so that the ratio
        // compares the two under the same table size and the same moment of this VM (whose
        // speed drifts within seconds).
        await t.empty();
        let singleMs = 0;
        let bareMs = 0;
        for (let done = 0; done < n; done += BLOCK) {
          const m = Math.min(BLOCK, n - done);
          singleMs += (await timed(async () => {
            for (let i = 0; i < m; i++) await benchNoop(done + i);
          })).ms;
          bareMs += (await timed(async () => {
            for (let i = 0; i < m; i++) await t.knex(t.tasks).insert(row);
          })).ms;
        }
        single.push(perSecond(n, singleMs));
        bare.push(perSecond(n, bareMs));
        await t.empty();
        const b = await timed(() => benchNoop.bulk(calls));
        bulk.push(perSecond(n, b.ms));
        ctx.log(`  run ${r + 1}: single ${Math.round(single[r]!)}/s, bulk ${Math.round(bulk[r]!)}/s, bare knex ${Math.round(bare[r]!)}/s`);
      }
    } finally {
      await releaseLibrary();
      await t.drop();
    }
    return [
      measured('enqueue', 'single', `${count(n)} single calls`, db, 'tasks/s', single),
      measured('enqueue', 'bulk', `${count(n)} in one bulk()`, db, 'tasks/s', bulk),
      measured('enqueue', 'bare', `${count(n)} bare knex inserts (baseline)`, db, 'rows/s', bare),
      measured('enqueue', 'single-vs-bare', 'single calls ÷ bare knex inserts', db, 'ratio', single.map((v, i) => v / bare[i]!)),
    ];
  },
};

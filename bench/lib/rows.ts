/**
 * Generating a million rows straight into the tables, as the issue asks (not a million enqueue
 * calls): one real task is enqueued through the API as a template, then `INSERT … SELECT` copies
 * it in chunks of 100,000 rows, numbering each copy from a cross join of a ten-row digits table.
 * That idiom runs unchanged on SQLite, MariaDB, MySQL 8 and PostgreSQL (no generate_series, no
 * recursive CTE limits). Values are written as literals escaped by knex for the dialect, because
 * PostgreSQL cannot type bound parameters in a SELECT list.
 */
import type { Knex } from 'knex';
import { benchNoop } from './api.js';
import type { BenchTables } from './databases.js';

const CHUNK_DIGITS = 5;
const CHUNK = 10 ** CHUNK_DIGITS;
const DIGITS = `(${Array.from({ length: 10 }, (_, i) => `SELECT ${i} AS d`).join(' UNION ALL ')})`;

/** `FROM` clause and the expression of a number 0 … CHUNK-1 over it. */
function numbered(): { from: string; n: string } {
  const names = Array.from({ length: CHUNK_DIGITS }, (_, i) => `g${i}`);
  return {
    from: names.map((g) => `${DIGITS} ${g}`).join(' CROSS JOIN '),
    n: names.map((g, i) => (i === 0 ? `${g}.d` : `${10 ** i} * ${g}.d`)).join(' + '),
  };
}

/** An SQL expression per column; `{n}` stands for the row's number (0 … count-1). */
export type ColumnExprs = Record<string, string>;

function concat(t: BenchTables, ...parts: string[]): string {
  return t.db === 'mysql' ? `CONCAT(${parts.join(', ')})` : parts.join(' || ');
}

/** A literal for `value`, escaped for this dialect. */
export function literal(t: BenchTables, value: unknown): string {
  return t.knex.raw('?', [value as Knex.Value]).toQuery();
}

/** Inserts `count` rows into `table`, each from `exprs` with {n} replaced by its number. */
export async function insertNumbered(t: BenchTables, table: string, count: number, exprs: ColumnExprs): Promise<void> {
  const { from, n } = numbered();
  const cols = Object.keys(exprs);
  for (let base = 0; base < count; base += CHUNK) {
    const rowNumber = `(${base} + ${n})`;
    const select = cols.map((c) => exprs[c]!.replaceAll('{n}', rowNumber)).join(', ');
    const into = cols.map((c) => t.knex.raw('??', [c]).toQuery()).join(', ');
    const sql = `INSERT INTO ${t.knex.raw('??', [table]).toQuery()} (${into}) SELECT ${select} FROM ${from} WHERE ${n} < ${Math.min(CHUNK, count - base)}`;
    await t.knex.raw(sql);
  }
}

/** Column → literal for every non-null value of a task row that the API wrote (the template). */
async function templateOf(t: BenchTables): Promise<ColumnExprs> {
  const ref = await benchNoop(0);
  const row = (await t.knex(t.tasks).where('id', ref.id).first()) as Record<string, unknown>;
  await t.knex(t.tasks).where('id', ref.id).del();
  const exprs: ColumnExprs = {};
  for (const [k, v] of Object.entries(row)) if (k !== 'id' && v !== null) exprs[k] = literal(t, v);
  return exprs;
}

/**
 * `count` pending tasks that are not due: run times spread over the next days, distinct
 * arguments and hashes, so the indexes look like a real backlog of scheduled work; of `priority`.
 */
export async function insertNotDue(t: BenchTables, count: number, nowMs: number, priority = 0): Promise<void> {
  const exprs = await templateOf(t);
  const runAt = `${nowMs + 86_400_000} + 600 * {n}`;
  Object.assign(exprs, {
    priority: String(priority),
    args: concat(t, `'['`, '{n}', `']'`),
    hash: concat(t, `'bench'`, '{n}'),
    run_at: runAt,
    scheduled_at: runAt,
    enqueued_at: String(nowMs),
  });
  await insertNumbered(t, t.tasks, count, exprs);
}

/** `count` succeeded results that finished `ageDays` ago (what a prune removes), ids from `firstId`. */
export async function insertOldResults(t: BenchTables, count: number, nowMs: number, ageDays: number, firstId = 1): Promise<void> {
  const pending = await templateOf(t);
  const completedCols = Object.keys(await t.knex(t.completed).columnInfo());
  const exprs: ColumnExprs = {};
  for (const c of completedCols) if (pending[c] !== undefined) exprs[c] = pending[c]!;
  const finished = `${nowMs - ageDays * 86_400_000} + {n}`;
  Object.assign(exprs, {
    task_id: `${firstId} + {n}`,
    args: concat(t, `'['`, '{n}', `']'`),
    hash: concat(t, `'bench'`, '{n}'),
    run_at: finished,
    scheduled_at: finished,
    enqueued_at: finished,
    started_at: finished,
    finished_at: finished,
    attempts: '1',
    worker_id: `'bench-generated'`,
  });
  await insertNumbered(t, t.completed, count, exprs);
}

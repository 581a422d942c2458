/**
 * The keyed claim's reads (store/flow-claim.ts): whether keyed tasks wait, the due keys in turn
 * order, each key's first tasks, and what runs now; the keys, their first tasks and what runs
 * come in one statement when a claim takes one task (or one chain) per key.
 */
import type { Knex } from 'knex';
import type { FlowCandidate } from '../policy/flow.js';
import { LOOK_EVERY_MS, limitedName, type ClaimStore as Store, type FlowPlan } from './claim-plan.js';

/** Whether keyed tasks wait (looked at most every LOOK_EVERY_MS; an index probe). */
export async function keyedWaiting(store: Store, plan: FlowPlan): Promise<boolean> {
  const now = Date.now();
  if (now - plan.keyedSeenAt < LOOK_EVERY_MS) return plan.keyed;
  const q = store.knex(store.tables.tasks).select('id').whereNull('locked_by').whereNotNull('concurrency_key');
  // Read backwards where a read past the range's end goes through the entries waiting for
  // clean-up (dialect.readsPastRangeEnd): forwards, MariaDB's probe of a table without keyed tasks
  // read through every finished task's entry that purge had not removed (152 ms a look in
  // LONGTX-01, four looks a second); backwards it meets the newest unkeyed task first.
  if (store.dialect.readsPastRangeEnd) q.orderBy('concurrency_key', 'desc');
  const row = await q.first();
  plan.keyed = row !== undefined;
  plan.keyedSeenAt = now;
  return plan.keyed;
}

/**
 * The first due key (of an unlocked task) matching `where`, as one ordered index seek: MariaDB
 * computes MIN() with a condition beside the key by reading the whole range (twice as slow over
 * 100 keys in 10,000 tasks), where `ORDER BY … LIMIT 1` stops at the first entry on every database.
 */
export function nextKey(table: string, where: string): string {
  return `SELECT concurrency_key FROM ${table} WHERE locked_by IS NULL AND run_at <= ? AND ${where} ORDER BY concurrency_key LIMIT 1`;
}

/**
 * Keys of unlocked tasks due by `nowMs`, in key order from after `cursor`, wrapping; at most `max`.
 * Only due keys: keys whose tasks all run later (scheduled, snoozed) would otherwise fill the
 * claim's share of keys and keep the due ones from ever being looked at. A recursive walk of the
 * key index (a seek per key), unless the dialect lists the keys its own way (`dueKeys`).
 */
export async function keysInTurn(store: Store, trx: Knex.Transaction, plan: FlowPlan, cursor: string | null, max: number, nowMs: number): Promise<string[]> {
  const t = store.dialect.quote(store.tables.tasks);
  const scan = async (after: string | null, upTo: string | null, limit: number): Promise<string[]> => {
    if (store.dialect.dueKeys) {
      const listed = store.dialect.dueKeys(store.tables.tasks, after, upTo, limit, nowMs);
      return store.dialect.rows(await trx.raw(listed.sql, listed.bindings)).map((r) => String(r.name));
    }
    const first = after === null ? 'concurrency_key IS NOT NULL' : 'concurrency_key > ?';
    const sql =
      `WITH RECURSIVE k(name) AS (SELECT (${nextKey(t, first)}) ` +
      `UNION ALL SELECT (${nextKey(t, 'concurrency_key > k.name')}) FROM k WHERE k.name IS NOT NULL) ` +
      `SELECT name FROM k WHERE name IS NOT NULL${upTo === null ? '' : ' AND name <= ?'} LIMIT ${Math.max(1, Math.floor(limit))}`;
    const bindings = [nowMs, ...(after === null ? [] : [after]), nowMs, ...(upTo === null ? [] : [upTo])];
    return store.dialect.rows(await trx.raw(sql, bindings)).map((r) => String(r.name));
  };
  if (plan.keysFit || cursor === null) {
    // The last look from the first key found every due key within one window: look from the
    // first key again and start the turn after the cursor here, one statement where a look from
    // the cursor takes two (the turn wraps past the last key).
    const all = await scan(null, null, max);
    plan.keysFit = all.length < max;
    if (plan.keysFit || cursor === null) return rotate(all, cursor);
  }
  const after = await scan(cursor, null, max);
  if (after.length >= max) return after;
  return [...after, ...(await scan(null, cursor, max - after.length))];
}

/** Keys in turn order: those after `cursor` first, then from the first key (keys in key order). */
export function rotate(keys: string[], cursor: string | null): string[] {
  if (cursor === null) return keys;
  const at = keys.findIndex((k) => k > cursor);
  return at > 0 ? [...keys.slice(at), ...keys.slice(0, at)] : keys;
}

/**
 * The id of the first task (in claim order) of each key, in one statement: a correlated
 * subquery per row of a list of the keys.
 */
export async function firstOfEachKey(store: Store, trx: Knex.Transaction, keys: readonly string[], first: () => Knex.QueryBuilder): Promise<string[]> {
  const list = keys.map(() => 'SELECT ? AS ck').join(' UNION ALL ');
  const inner = first().whereRaw('concurrency_key = k.ck').toSQL();
  const sql = `SELECT (${inner.sql}) AS id FROM (${list}) k`;
  const rows = store.dialect.rows(await trx.raw(sql, [...(inner.bindings as Knex.RawBinding[]), ...keys]));
  return rows.filter((r) => r.id !== null && r.id !== undefined).map((r) => String(r.id));
}

/**
 * keysInTurn and firstOfEachKey in one statement: the due keys after `after`
 * (all keys when null), at most `max`, then, when `wrap`, those from the first key up to `after`,
 * each with its first task in claim order (null columns when none of its tasks is one this claim
 * may take). Keys in turn order, as the index orders them; at most `max` in all.
 */
export async function keysWithFirsts(
  store: Store,
  trx: Knex.Transaction,
  after: string | null,
  wrap: boolean,
  max: number,
  nowMs: number,
  first: () => Knex.QueryBuilder,
  running: Knex.QueryBuilder,
  /** Tasks read per key (its first ones in claim order). */
  depth = 1,
): Promise<{ keys: string[]; firsts: Candidate[]; running: RunningRow[] }> {
  const t = store.dialect.quote(store.tables.tasks);
  const limit = Math.max(1, Math.floor(max));
  const also = running.toSQL();
  const bindings: Knex.RawBinding[] = [];
  const keyList = store.dialect.dueKeys ? listedKeys(store, bindings, after, wrap, limit, nowMs) : walkedKeys(t, bindings, after, wrap, limit, nowMs);
  const cols = 'f.id, f.name, f.queue, f.concurrency_key, f.priority, f.run_at, NULL AS locked_by, NULL AS claim_token';
  const branches: string[] = [];
  if (store.dialect.lateralJoins) {
    // PostgreSQL plans `f.id = (seek)` as a hash join over a sequential scan of the whole table
    // (measured: 5 ms against 1.8 ms over 7,000 tasks, and growing with them); a lateral join
    // reads each key's first rows by the seek itself. (`depth` only marks one row per key 0.)
    const seek = first().whereRaw('concurrency_key = ks.name').clearSelect().select('id', 'name', 'queue', 'concurrency_key', 'priority', 'run_at').limit(depth).toSQL();
    bindings.push(...(seek.bindings as Knex.RawBinding[]));
    branches.push(`SELECT 0 AS kind, ks.part AS part, ks.n AS n, ROW_NUMBER() OVER (PARTITION BY ks.part, ks.n) - 1 AS depth, ks.name AS scan_key, ${cols} FROM ks LEFT JOIN LATERAL (${seek.sql}) f ON true`);
  } else {
    // Elsewhere the ids of each key's first task, its second, … come from one pass over the keys
    // (a seek each), then a primary-key look-up per id. One UNION branch per depth instead had
    // MariaDB build the list of keys once per branch and run each seek two or three times (what
    // ANALYZE showed: 16 ms against 7 ms a claim of 100 keys × 4). The LIMIT keeps the pass a
    // table of its own (a derived table with a LIMIT is never merged into the outer query), so
    // each seek runs once per key.
    const ids: string[] = [];
    for (let d = 0; d < depth; d++) {
      const seek = first().whereRaw('concurrency_key = ks.name').offset(d).toSQL();
      bindings.push(...(seek.bindings as Knex.RawBinding[]));
      ids.push(`(${seek.sql}) AS i${d}`);
    }
    const depths = Array.from({ length: depth }, (_, d) => `SELECT ${d} AS d`).join(' UNION ALL ');
    const idAt = `CASE ds.d ${Array.from({ length: depth }, (_, d) => `WHEN ${d} THEN x.i${d}`).join(' ')} END`;
    branches.push(
      `SELECT 0 AS kind, x.part AS part, x.n AS n, ds.d AS depth, x.name AS scan_key, ${cols} ` +
        `FROM (SELECT ks.part, ks.n, ks.name, ${ids.join(', ')} FROM ks LIMIT ${2 * limit}) x ` +
        // Every key has its depth-0 row (null columns when none of its tasks may be taken).
        `CROSS JOIN (${depths}) ds LEFT JOIN ${t} f ON f.id = ${idAt} WHERE ds.d = 0 OR f.id IS NOT NULL`,
    );
  }
  bindings.push(...(also.bindings as Knex.RawBinding[]));
  // The running tasks the limits count come in the same statement (kind 1): one round trip less
  // in every keyed claim.
  const sql =
    `${keyList} ${branches.join(' UNION ALL ')} ` +
    `UNION ALL SELECT 1, NULL, NULL, NULL, NULL, r.id, r.name, r.queue, r.concurrency_key, NULL, NULL, r.locked_by, r.claim_token FROM (${also.sql}) r ` +
    `ORDER BY kind, part, n, depth`;
  const all = store.dialect.rows(await trx.raw(sql, bindings));
  const keys = all.filter((r) => Number(r.kind) === 0 && Number(r.depth) === 0).slice(0, limit).map((r) => String(r.scan_key));
  const looked = new Set(keys);
  const firsts: Candidate[] = [];
  for (const r of all) {
    if (Number(r.kind) !== 0 || r.id === null || r.id === undefined || !looked.has(String(r.scan_key))) continue;
    firsts.push({ id: String(r.id), name: String(r.name), queue: r.queue === null ? null : String(r.queue), key: String(r.concurrency_key), priority: Number(r.priority), runAt: Number(r.run_at) });
  }
  const runningRows = all.filter((r) => Number(r.kind) === 1) as unknown as RunningRow[];
  return { keys, firsts, running: runningRows };
}

/**
 * keysWithFirsts' `ks` (name, n, part) through a recursive walk of the key index, a seek per key.
 * `upTo` also ends the walk past it, and it stops at `limit` keys: the ORDER BY of the statement
 * sorts the whole walk, so without that bound a claim would seek every due key (tens of thousands
 * of tenants) while it holds the flow lock.
 */
export function walkedKeys(t: string, bindings: Knex.RawBinding[], after: string | null, wrap: boolean, limit: number, nowMs: number): string {
  const walk = (cte: string, from: string | null, upTo: string | null): string => {
    bindings.push(nowMs, ...(from === null ? [] : [from]), nowMs, ...(upTo === null ? [] : [upTo]));
    return (
      `${cte}(name, n) AS (SELECT (${nextKey(t, from === null ? 'concurrency_key IS NOT NULL' : 'concurrency_key > ?')}), 1 ` +
      `UNION ALL SELECT (${nextKey(t, `concurrency_key > ${cte}.name`)}), ${cte}.n + 1 FROM ${cte} ` +
      `WHERE ${cte}.name IS NOT NULL AND ${cte}.n < ${limit}${upTo === null ? '' : ` AND ${cte}.name < ?`})`
    );
  };
  const parts = [walk('k0', after, null)];
  if (wrap && after !== null) parts.push(walk('k1', null, after));
  const pick = (cte: string, part: number, upTo: string | null) => {
    if (upTo !== null) bindings.push(upTo);
    return `SELECT * FROM (SELECT name, n, ${part} AS part FROM ${cte} WHERE name IS NOT NULL${upTo === null ? '' : ' AND name <= ?'} ORDER BY n LIMIT ${limit}) p${part}`;
  };
  const ks = parts.length === 1 ? pick('k0', 0, null) : `${pick('k0', 0, null)} UNION ALL ${pick('k1', 1, after)}`;
  return `WITH RECURSIVE ${parts.join(', ')}, ks AS (${ks})`;
}

/**
 * keysWithFirsts' `ks` (name, n, part) through the dialect's own list of keys: once from `after`
 * and, when the turn wraps, once more from the first key up to `after` (each in key order).
 */
export function listedKeys(store: Store, bindings: Knex.RawBinding[], after: string | null, wrap: boolean, limit: number, nowMs: number): string {
  const part = (n: number, from: string | null, upTo: string | null) => {
    const listed = store.dialect.dueKeys!(store.tables.tasks, from, upTo, limit, nowMs);
    bindings.push(...listed.bindings);
    return `SELECT name, name AS n, ${n} AS part FROM (${listed.sql}) p${n}`;
  };
  return `WITH ks AS (${part(0, after, null)}${wrap && after !== null ? ` UNION ALL ${part(1, null, after)}` : ''})`;
}

/**
 * Usage of the limiters: RUNNING tasks under a live lease at `nowMs`, and starts within each rate
 * window ending at the flow time (`rateNow`, read only when a rate limit is among them). A task
 * that `ended` says ended on the claiming worker is not counted as running: its lease lasts until
 * its result is written, but it runs no more (other workers, who cannot know, still count it).
 */
/** A task under a live lease that some limit counts (usageOf). */
export interface RunningRow {
  id: unknown;
  name: string;
  queue: string | null;
  concurrency_key: string | null;
  locked_by: string;
  claim_token: string | null;
}

/** The tasks under a live lease at `nowMs` that a concurrency limit of the plan counts. */
export function runningQuery(store: Store, trx: Knex.Transaction, plan: FlowPlan, nowMs: number): Knex.QueryBuilder {
  const limitedNames = [...plan.taskLimits.keys()].filter((n) => limitedName(plan, n));
  const limitedQueues = [...plan.queueLimits.keys()];
  return trx(store.tables.tasks)
    .select('id', 'name', 'queue', 'concurrency_key', 'locked_by', 'claim_token')
    .whereNotNull('locked_by')
    .where('locked_until', '>', nowMs)
    .where((b) => {
      b.whereNotNull('concurrency_key');
      if (limitedNames.length) b.orWhereIn('name', limitedNames);
      if (limitedQueues.length) b.orWhereIn('queue', limitedQueues);
    });
}

export type Candidate = FlowCandidate & { priority: number; runAt: number };

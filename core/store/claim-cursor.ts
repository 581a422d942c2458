/**
 * The plain claim, read on from where the last one ended (PostgreSQL, MySQL/MariaDB).
 *
 * A claim reads the claim index in claim order and stops after its batch. Each claimed or finished
 * task leaves an entry behind at the front of that order until the server cleans it up (vacuum,
 * purge), and a transaction that stays open holds the clean-up off for as long as it lives. Read
 * from the start, every claim then walks past every task run since that transaction began: in
 * LONGTX-01 the PostgreSQL claim went from 14 to 120 ms in ten minutes, MariaDB's from 14 to 373.
 *
 * So the claim starts at the last task this worker claimed (its cursor) and reads three ranges of
 * the claim order, in order: tasks that rank above the cursor's priority (new urgent work is never
 * behind it), those of its priority after it, those below it. What the cursor skips are tasks of
 * its priority that became claimable behind it: an enqueue that committed late, a task scheduled
 * in the past, a task given back with its old run time. A claim from the start finds them: at
 * least every FULL_EVERY_MS, or less often when reading from the start is slow (at most
 * 1/FULL_SHARE of the time); and when the claim from the cursor comes back short, at once unless
 * that too would read from the start more than 1/FULL_SHARE of the time. A task behind the cursor
 * thus waits at most max(FULL_EVERY_MS, FULL_SHARE × the last read from the start) for a busy
 * worker, and FULL_SHARE × that read for one that runs short (milliseconds on a table that is
 * cleaned up, so at once in practice); the order of tasks of one priority is kept within that
 * bound. The short case is bounded too because it is the costly one: the read from the start
 * walks the entries left at the front, and a worker that keeps up with its enqueuers runs short
 * at nearly every claim (LONGTX-01: two seconds a claim after a few minutes beside a held
 * transaction, had it read from the start each time).
 *
 * The claim after a short one reads from the start first, and alone: when that read is due by the
 * rule above, or when the last one took no longer than the last read from the cursor, timed
 * within FULL_EVERY_MS (on a table that is cleaned up the cursor's three ranges cost more to plan
 * than they save). Such reads cost no more than the reads from the cursor they replace, so the
 * bound on the time spent reading from the start beyond them stays 1/FULL_SHARE. Reading first
 * and alone matters for start latency: a worker that keeps up is nearly always short again, and
 * its read from the cursor was followed by the one from the start whenever that was due, two
 * statements between a task's enqueue and its start. A busy worker keeps to the cursor: the
 * front of the claim order fills with the entries of the tasks it claims (MariaDB ran 5 % slower
 * at concurrency 16 reading from the start whenever that was no slower).
 */
import type { Knex } from 'knex';
import { COSTLY_SHARE, dueAgain, order, type ClaimArgs, type ClaimPosition, type ClaimStore as Store } from './claim-plan.js';
import { splitByPriority, walkWhenDue } from './claim-priorities.js';

type Row = Record<string, unknown>;

/** A claim from the start at least this often (ms), while reading from the start is cheap. */
export const FULL_EVERY_MS = 1_000;
/** Reading from the start may take at most 1/FULL_SHARE of the time. */
export const FULL_SHARE = COSTLY_SHARE;

/**
 * The next claim from the start is due (epoch ms, real clock): it keeps within its share of the
 * time, and comes at least `floorMs` after the last one (FULL_EVERY_MS for a busy worker's claim,
 * 0 after a short claim).
 */
function fullDue(a: ClaimArgs, floorMs: number): boolean {
  const p = a.plan;
  return p.claimCursor === null || dueAgain(p.fullClaimAt, p.fullClaimMs, floorMs);
}

/** -1, 0, 1: whether position x comes before, with or after y in claim order. */
function compare(x: ClaimPosition, y: ClaimPosition, ordering: 'ASC' | 'DESC'): number {
  const byPriority = ordering === 'ASC' ? x.priority - y.priority : y.priority - x.priority;
  if (byPriority !== 0) return Math.sign(byPriority);
  if (x.runAt !== y.runAt) return Math.sign(x.runAt - y.runAt);
  const [a, b] = [BigInt(x.id), BigInt(y.id)];
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The furthest of `from` and the claimed rows in claim order. */
export function furthest(from: ClaimPosition | null, rows: readonly Row[], ordering: 'ASC' | 'DESC'): ClaimPosition | null {
  let out = from;
  for (const r of rows) {
    const p = { priority: Number(r.priority), runAt: Number(r.run_at), id: String(r.id) };
    if (out === null || compare(p, out, ordering) > 0) out = p;
  }
  return out;
}

/** An id as a bound value: a number where it is exact (MySQL compares a BIGINT with a string as doubles). */
const idValue = (id: string): number | string => (Number.isSafeInteger(Number(id)) ? Number(id) : id);

/**
 * The three ranges of the claim order from the cursor on (see the header): above its priority,
 * its priority after it, below its priority; each through the claim index.
 */
async function afterCursor(store: Store, candidates: () => Knex.QueryBuilder, c: ClaimPosition, a: ClaimArgs, want: number): Promise<Knex.QueryBuilder[]> {
  const dir = a.ordering === 'ASC' ? 'asc' : 'desc';
  const [above, below] = a.ordering === 'ASC' ? ['<', '>'] : ['>', '<'];
  const pinned = () => {
    const q = candidates();
    const from = store.dialect.claimIndexSource?.(store.knex, store.tables.tasks);
    return from ? q.from(from) : q;
  };
  const id = idValue(c.id);
  // PostgreSQL reads a row comparison as one index range; MariaDB's range optimizer takes the OR.
  const after =
    store.dialect.name === 'postgres'
      ? (q: Knex.QueryBuilder) => q.whereRaw('(run_at, id) > (?, ?)', [c.runAt, id])
      : (q: Knex.QueryBuilder) => q.where((b) => b.where('run_at', '>', c.runAt).orWhere((e) => e.where('run_at', c.runAt).where('id', '>', id)));
  const ranges: Array<Knex.QueryBuilder | null> = [pinned().where('priority', above, c.priority), after(pinned().where('priority', c.priority)), pinned().where('priority', below, c.priority)];
  if (store.dialect.readsPastRangeEnd) {
    // The range above ends where the entries of the tasks run from this priority begin, and the
    // one below where those of the running and finished tasks do: read to its end, either one
    // reads them all. Read backwards from their far ends (one row each, one statement), they say
    // at once whether they hold anything; only those that do are read in claim order.
    const back = [{ column: 'priority', order: dir === 'asc' ? 'desc' : 'asc' }, { column: 'run_at', order: 'desc' }, { column: 'id', order: 'desc' }];
    const look = (q: Knex.QueryBuilder, side: string) => q.clearSelect().select(store.knex.raw('? AS side', [side])).orderBy(back).limit(1);
    const found = new Set((await store.retrying(() => store.dialect.unionAll(store.knex, [look(ranges[0]!.clone(), 'above'), look(ranges[2]!.clone(), 'below')]))).map((r) => String(r.side)));
    if (!found.has('above')) ranges[0] = null;
    if (!found.has('below')) ranges[2] = null;
  }
  return ranges.filter((q): q is Knex.QueryBuilder => q !== null).map((q) => q.select('priority', 'run_at').orderBy(order(dir)).limit(want));
}

/**
 * Claims up to `want` plain tasks, `candidates` being their due, unlocked ids (filters applied,
 * not ordered nor limited). From the cursor where the dialect asks for it, else from the start.
 */
export async function claimAlongCursor(store: Store, a: ClaimArgs, want: number, unsplit: () => Knex.QueryBuilder): Promise<Row[]> {
  // Where a read across priorities walks their not-due tasks, one range per priority, as the last
  // walk found them (claim-priorities.ts; the next starts after this claim when due).
  const known = store.dialect.seeksPerPriority ? a.plan.priorities : [];
  const candidates = () => splitByPriority(unsplit(), known);
  const dir = a.ordering === 'ASC' ? 'asc' : 'desc';
  /** Claims, again after a deadlock; `took` gets the time of the attempt that succeeded, without the back-off. */
  const claim = (c: Parameters<Store['dialect']['claim']>[2], took: (ms: number) => void = () => {}) =>
    store.retrying(async () => {
      const started = performance.now();
      const rows = await store.dialect.claim(store.knex, store.tables.tasks, c, a.set);
      took(performance.now() - started);
      return rows;
    });
  // The prefetch's check (`above`) reads only what outranks the floor: from the start is right.
  if (!store.dialect.claimFromCursor || a.above !== undefined) return claim(candidates().orderBy(order(dir)).limit(want));
  const plan = a.plan;
  const rows: Row[] = [];
  // After a short claim, the read from the start first and alone (see the header).
  const cheap = plan.claimShort && plan.fullClaimMs <= plan.cursorClaimMs && Date.now() - plan.cursorClaimAt < FULL_EVERY_MS;
  const fromCursor = !cheap && !fullDue(a, plan.claimShort ? 0 : FULL_EVERY_MS);
  if (fromCursor) {
    const started = performance.now();
    const members = await afterCursor(store, candidates, plan.claimCursor!, a, want);
    const probed = performance.now() - started;
    rows.push(...(await claim({ members, limit: want, ordering: a.ordering, consecutive: true }, (ms) => (plan.cursorClaimMs = probed + ms))));
    plan.cursorClaimAt = Date.now();
  }
  if (rows.length < want && (!fromCursor || fullDue(a, 0))) {
    try {
      rows.push(...(await claim(candidates().orderBy(order(dir)).limit(want - rows.length), (ms) => (plan.fullClaimMs = ms))));
      plan.fullClaimAt = Date.now();
    } catch (err) {
      // What the claim from the cursor took is held now and must reach the worker; the error
      // comes back at the next claim.
      if (rows.length === 0) throw err;
    }
  }
  plan.claimCursor = furthest(plan.claimCursor, rows, a.ordering);
  plan.claimShort = rows.length < want;
  if (store.dialect.seeksPerPriority) walkWhenDue(store, plan, a.nowMs);
  return rows;
}

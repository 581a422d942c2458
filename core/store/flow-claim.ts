/**
 * The flow path of a claim (store/claim.ts): keyed tasks and tasks under a concurrency or rate
 * limit, inside one transaction serialised by a lock row shared by every worker of the database
 * (on SQLite, where the only limit is one per key, without either: see flowClaim). It reads
 * what runs now and what started within each rate window, lets keys take turns (policy/flow.ts),
 * admits what every limit has room for, claims exactly those rows and records their starts;
 * rate windows are counted at the flow time (store/flow-clock.ts), read once the lock is held.
 * Tasks held back stay READY: no attempt is counted and no error recorded.
 */
import type { Knex } from 'knex';
import { admit, isKeyLimit, limitersFor, rateWindow, takeTurns, type FlowCandidate, type Limiter, type Usage } from '../policy/flow.js';
import { applyNames, applyQueues, dueBase, keyLimitOf, limitedName, onlyOnePerKey, order, type ClaimArgs, type ClaimStore as Store, type FlowPlan } from './claim-plan.js';
import { lockFlow, readFlowTime, setFlowTime } from './flow-clock.js';
import { firstOfEachKey, keyedWaiting, keysInTurn, keysWithFirsts, rotate, runningQuery, type Candidate, type RunningRow } from './key-walk.js';

/** Keys looked at per flow claim, at most: bounds the work of one claim whatever the key count. */
const MAX_KEYS_PER_CLAIM = 500;

/** The limits of one candidate. */
function limitersOf(plan: FlowPlan, chain: number): (t: FlowCandidate) => Limiter[] {
  const cache = new Map<string, Limiter[]>();
  return (t) => {
    const k = `${t.name}\u0000${t.queue ?? ''}\u0000${t.key ?? ''}\u0000${t.queue === null ? 0 : 1}`;
    let ls = cache.get(k);
    if (!ls) {
      ls = limitersFor(t, plan.taskLimits.get(t.name), t.queue === null ? undefined : plan.queueLimits.get(t.queue));
      // A chain: the key admits `chain` of this worker's tasks (usageOf fills it when another
      // worker holds the key); the worker starts them one at a time.
      if (chain > 1) ls = ls.map((l) => (isKeyLimit(l, t) ? { ...l, limit: chain } : l));
      cache.set(k, ls);
    }
    return ls;
  };
}

async function usageOf(
  store: Store,
  trx: Knex.Transaction,
  limiters: Limiter[],
  of: (t: FlowCandidate) => Limiter[],
  rateNow: () => Promise<number>,
  mine: { workerId: string; ended: ReadonlyMap<string, string> | undefined; chain: number },
  /** runningQuery's rows, read in this claim (once the lock was held, where it is taken). */
  running: readonly RunningRow[],
): Promise<Usage> {
  const usage: Usage = new Map();
  const heldElsewhere: Limiter[] = [];
  const ended = mine.ended;
  for (const r of running) {
    // Ended on this worker (its own lease, the same claim), its result not yet written.
    if (ended !== undefined && ended.size > 0 && r.locked_by === mine.workerId && r.claim_token !== null && ended.get(String(r.id)) === r.claim_token) continue;
    const t = { id: String(r.id), name: r.name, queue: r.queue, key: r.concurrency_key };
    for (const l of of(t)) {
      if (l.kind !== 'concurrency') continue;
      usage.set(l.id, (usage.get(l.id) ?? 0) + 1);
      if (mine.chain > 1 && r.locked_by !== mine.workerId && isKeyLimit(l, t)) heldElsewhere.push(l);
    }
  }
  // A key another worker holds is full for a chain (its limit is 1 across workers).
  for (const l of heldElsewhere) usage.set(l.id, l.limit);
  const rates = limiters.filter((l) => l.kind === 'rate');
  if (rates.length > 0) {
    const atMs = await rateNow();
    const longest = Math.max(...rates.map((l) => l.periodMs!));
    const starts = (await trx(store.tables.rateStarts)
      .select('limiter', 'started_at')
      .whereIn('limiter', rates.map((l) => l.id))
      .where('started_at', '>', atMs - longest)) as Array<{ limiter: string; started_at: unknown }>;
    for (const l of rates) {
      const mine = starts.filter((s) => s.limiter === l.id).map((s) => Number(s.started_at));
      usage.set(l.id, l.limit - rateWindow(mine, l.limit, l.periodMs!, atMs).room);
    }
  }
  return usage;
}

/** A claimed row as the limits read it. */
const candidateOf = (r: Record<string, unknown>): FlowCandidate => ({
  id: String(r.id),
  name: String(r.name),
  queue: r.queue === null || r.queue === undefined ? null : String(r.queue),
  key: r.concurrency_key === null || r.concurrency_key === undefined ? null : String(r.concurrency_key),
});

/** Keyed and limited tasks, admitted by their limits with keys taking turns. */
export async function flowClaim(store: Store, a: ClaimArgs, want: number): Promise<Record<string, unknown>[]> {
  const plan = a.plan;
  const limitedNames = a.names.filter((n) => limitedName(plan, n));
  const skipPaused = [...plan.pausedQueues];
  const limitedQueues = [...plan.queueLimits.keys()].filter((q) => !plan.pausedQueues.has(q));
  const keyed = await keyedWaiting(store, plan);
  if (want <= 0 || (!keyed && limitedNames.length === 0 && limitedQueues.length === 0)) return [];
  const dir = a.ordering === 'ASC' ? 'asc' : 'desc';
  const sign = dir === 'asc' ? 1 : -1;
  const cols = ['id', 'name', 'queue', 'concurrency_key', 'priority', 'run_at'];
  // A chain only where the only limit is one per key (the worker asks for it only then).
  const chain = a.keyChain !== undefined && a.keyChain > 1 && onlyOnePerKey(plan, a) ? Math.floor(a.keyChain) : 1;
  const of = limitersOf(plan, chain);
  // Where one statement writes at a time across the whole database (SQLite, every process), each
  // on the latest committed state, and the only limit is one per key, a claim takes neither the
  // flow lock nor a transaction: its reads only propose tasks, and the claiming statement itself
  // leaves out each task no longer due and unlocked, and each whose name and key a live lease of
  // another worker holds by then. This worker's claims of this kind run one at a time
  // (plan.unlockedClaim; the priority check claims beside the loop), so its own holdings read
  // here hold or shrink as its tasks end (where they grew, a lease retaken, it may take more of a
  // key than its chain: its dispatch still starts one task of a key at a time). The lock and the
  // transaction's three more round trips were half of such a claim's time there.
  const guarded = store.dialect.oneWriter === true && onlyOnePerKey(plan, a);
  const inTransaction = async (fn: (trx: Knex.Transaction) => Promise<Record<string, unknown>[]>) => {
    if (!guarded) return store.tx(fn);
    const mine = plan.unlockedClaim.then(() => store.retrying(() => fn(store.knex as Knex.Transaction)));
    plan.unlockedClaim = mine.catch(() => undefined);
    return mine;
  };
  return inTransaction(async (trx) => {
    // Every other flow claim of every worker takes this lock first: usage read here stays true
    // until this transaction commits the claims counted against it.
    if (!guarded) await lockFlow(trx, store.tables, a.nowMs);
    // Rate windows end at the flow time, read once: a start another claim dropped from its window
    // (or the prune deleted) since this worker read its clock is out of this window too.
    let rateNowMs: number | undefined;
    const rateNow = async () => (rateNowMs ??= await readFlowTime(trx, store.tables, Math.max(a.nowMs, a.now?.() ?? a.nowMs)));
    const base = () => dueBase(applyQueues(applyNames(trx(store.tables.tasks).select(cols), a.names), a, skipPaused), a);
    const sortCandidates = (list: Candidate[]) => list.sort((x, y) => sign * (x.priority - y.priority) || x.runAt - y.runAt || Number(x.id) - Number(y.id));
    const read = async (members: Knex.QueryBuilder[], known: readonly Candidate[] = []): Promise<Candidate[]> => {
      const found = new Map<string, Candidate>(known.map((c) => [c.id, c]));
      for (let i = 0; i < members.length; i += 100) {
        for (const r of (await store.dialect.unionAll(trx, members.slice(i, i + 100))) as Array<Record<string, unknown>>) {
          const id = String(r.id);
          found.set(id, { id, name: String(r.name), queue: r.queue === null ? null : String(r.queue), key: r.concurrency_key === null ? null : String(r.concurrency_key), priority: Number(r.priority), runAt: Number(r.run_at) });
        }
      }
      return sortCandidates([...found.values()]);
    };
    const admitted: Candidate[] = [];
    // Claimed in this transaction already: counted against their limits like running tasks.
    const count = (usage: Usage) => {
      for (const t of admitted) for (const l of of(t)) usage.set(l.id, (usage.get(l.id) ?? 0) + 1);
      return usage;
    };
    // Unkeyed tasks under a limit: per limited name and per limited queue, so a full limiter's
    // backlog cannot hide another's tasks. They take part in the first round of keys.
    let members: Knex.QueryBuilder[] = [];
    for (const n of limitedNames) members.push(base().whereNull('concurrency_key').where('name', n).orderBy(order(dir)).limit(want));
    for (const q of limitedQueues) members.push(base().whereNull('concurrency_key').where('queue', q).orderBy(order(dir)).limit(want));
    // Keys are looked at a window at a time, from the cursor on: when a window's keys admit fewer
    // tasks than wanted (their limits are full, or their tasks are in paused queues or of names
    // this worker does not run), the next window is looked at, up to MAX_KEYS_PER_CLAIM keys.
    const window = Math.min(MAX_KEYS_PER_CLAIM, Math.max(want * 4, 32));
    const seen = new Set<string>();
    let cursor = plan.keyCursor;
    let lastSeen: string | undefined;
    // Each key's first task is found by a seek correlated to the list of keys, in the index the
    // dialect names where the optimizer might scan instead (MariaDB).
    const seekFrom = store.dialect.claimIndexSource?.(trx, store.tables.tasks);
    const firstOf = () => {
      const q = base().clearSelect().select('id').orderBy(order(dir)).limit(1);
      return seekFrom ? q.from(seekFrom) : q;
    };
    const keyDepth = keyLimitOf(plan, a.names);
    // What runs now, read once per claim (the lock keeps it true; without the lock, the claiming
    // statement checks it again), often with the keys.
    let running: RunningRow[] | undefined;
    const runningNow = async () => (running ??= (await runningQuery(store, trx, plan, a.nowMs)) as RunningRow[]);
    for (const [n, l] of plan.taskLimits) if (l.concurrencyLimit) plan.keyedNames.add(n);
    for (;;) {
      let scanned: string[] = [];
      let firsts: Candidate[] = [];
      // When every key limit is 1, or the last look found at least as many keys as this claim
      // wants, it takes one task per key (see perKey; a chain's worth with keyChain): the keys,
      // their first tasks and what runs now come in one statement (keysWithFirsts).
      const oneStatement = keyed && (keyDepth === 1 || plan.keysFound >= want - admitted.length);
      if (oneStatement) {
        // When the last look from the first key found all due keys within one window, look from
        // the first key again and start the turn after the cursor here: one statement, where a
        // look from the cursor would wrap past the last key into a second.
        const whole = plan.keysFit || cursor === null;
        // A chain's depth: no more of each key than the keys the last look found need between
        // them for this claim (each deeper read seeks past the ones before it).
        const depth = chain > 1 && plan.keysFound > 0 ? Math.min(chain, Math.ceil((want - admitted.length) / plan.keysFound)) : chain;
        const found = await keysWithFirsts(store, trx, whole ? null : cursor, !whole, window, a.nowMs, firstOf, runningQuery(store, trx, plan, a.nowMs), depth);
        running ??= found.running;
        if (whole) {
          plan.keysFit = found.keys.length < window;
          found.keys = rotate(found.keys, cursor);
        }
        ({ keys: scanned, firsts } = found);
      } else if (keyed) {
        scanned = await keysInTurn(store, trx, plan, cursor, window, a.nowMs);
      }
      const keys = scanned.filter((k) => !seen.has(k));
      // Turns take one task per key per round, so a claim admits about want ÷ keys of each key:
      // reading more of every key (a full `want` each) was most of a keyed claim's time. With one
      // per key, one statement finds each key's first task (a seek per key in the key index).
      const perKey = Math.min(keyDepth, Math.max(1, Math.ceil((want - admitted.length) / Math.max(1, keys.length))));
      if (keyed) plan.keysFound = scanned.length;
      const fresh = firsts.filter((c) => !seen.has(c.key!));
      for (const k of keys) seen.add(k);
      if (oneStatement && perKey === 1) {
        // Read above. (With fewer keys than the claim wants, each key is read deeper below.)
      } else if (perKey === 1 && keys.length > 0) {
        const ids = await firstOfEachKey(store, trx, keys, firstOf);
        if (ids.length > 0) members.push(base().whereIn('id', ids));
      } else {
        for (const k of keys) members.push(base().where('concurrency_key', k).orderBy(order(dir)).limit(perKey));
      }
      if (keys.length > 0) lastSeen = keys[keys.length - 1];
      if (members.length === 0 && fresh.length === 0 && keys.length === 0) break;
      if (members.length > 0 || fresh.length > 0) {
        let candidates = members.length > 0 ? await read(members, fresh) : sortCandidates(fresh);
        members = [];
        for (let deeper = false; ; deeper = true) {
          for (const c of candidates) if (c.key !== null) plan.keyedNames.add(c.name);
          const turns = takeTurns(candidates, cursor);
          const limiters = [...new Map(candidates.flatMap(of).map((l) => [l.id, l])).values()];
          const usage = count(await usageOf(store, trx, limiters, of, rateNow, { workerId: a.workerId, ended: a.ended, chain }, await runningNow()));
          const round = admit(turns.order, of, usage, want - admitted.length);
          admitted.push(...round.admitted);
          if (deeper || admitted.length >= want || plan.keyedNames.size < 2) break;
          // Limits per key are per task name, but keys are read across names: the tasks read
          // of a key may all be of names whose own limit for it is full, with another name's
          // task of the key behind them. Once keyed tasks of several names have been seen, such
          // keys are read again for the other names' tasks (a read of the key's backlog, so not
          // where one name alone carries keys).
          const full = new Map<string, Set<string>>();
          for (const h of round.held) {
            if (h.task.key === null || !isKeyLimit(h.by, h.task)) continue;
            const names = full.get(h.task.key) ?? new Set<string>();
            full.set(h.task.key, names.add(h.task.name));
          }
          if (full.size === 0) break;
          const depth = Math.max(1, Math.ceil((want - admitted.length) / full.size));
          candidates = await read([...full].map(([k, names]) => base().where('concurrency_key', k).whereNotIn('name', [...names]).orderBy(order(dir)).limit(depth)));
          if (candidates.length === 0) break;
        }
      }
      // Every due key was looked at (the scan came back short, or only with keys seen already).
      if (admitted.length >= want || scanned.length < window || keys.length === 0 || seen.size >= MAX_KEYS_PER_CLAIM) break;
      cursor = lastSeen ?? cursor;
    }
    // The next claim's turns start after the last key served now; when none was served, after
    // the last key looked at, so that the next claim looks further.
    const lastKey = [...admitted].reverse().find((t) => t.key !== null)?.key ?? lastSeen;
    if (lastKey !== undefined) plan.keyCursor = lastKey;
    if (admitted.length === 0) return [];
    // Tasks under a rate limit are claimed at the flow time their windows were counted at: their
    // claim time (started_at) is the start the limiter records.
    const rated = admitted.some((t) => of(t).some((l) => l.kind === 'rate'));
    const atMs = rated ? await rateNow() : a.nowMs;
    const set = atMs === a.nowMs ? a.set : { ...a.set, nowMs: atMs, leaseUntilMs: a.set.leaseUntilMs + atMs - a.nowMs };
    // Still due and unlocked, of this worker's names and queues: without the flow lock (below),
    // another worker may have claimed, snoozed or retried a chosen task since the reads.
    const ids = dueBase(applyQueues(applyNames(trx(store.tables.tasks).select('id').whereIn('id', admitted.map((t) => t.id)), a.names), a, skipPaused), a);
    if (guarded) {
      ids.where((b) =>
        b.whereNull('concurrency_key').orWhereNotIn(
          ['name', 'concurrency_key'],
          trx(store.tables.tasks).select('name', 'concurrency_key').whereNotNull('locked_by').whereNot('locked_by', a.workerId).where('locked_until', '>', a.nowMs).whereNotNull('concurrency_key'),
        ),
      );
    }
    const claimed = await store.dialect.claim(trx, store.tables.tasks, ids, set);
    const starts = claimed.flatMap((r) =>
      of(candidateOf(r))
        .filter((l) => l.kind === 'rate')
        .map((l) => ({ limiter: l.id, started_at: atMs })),
    );
    for (let i = 0; i < starts.length; i += 400) await trx(store.tables.rateStarts).insert(starts.slice(i, i + 400));
    // The starts that left their window count no more: each limiter used here drops its own
    // (through the limiter index), so a busy limiter keeps about `limit` rows. Rows of limiters no
    // longer used are swept by pruneRateStarts (store/queues.ts).
    const used = new Map(claimed.flatMap((r) => of(candidateOf(r)).filter((l) => l.kind === 'rate').map((l) => [l.id, l.periodMs!] as const)));
    for (const [id, periodMs] of used) await trx(store.tables.rateStarts).where('limiter', id).where('started_at', '<=', atMs - periodMs).del();
    if (starts.length > 0) await setFlowTime(trx, store.tables, atMs);
    return claimed;
  });
}

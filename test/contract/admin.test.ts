/**
 * The SQL of the operations commands (core/store/prune.ts, core/store/admin.ts, core/store/task-detail.ts) on every
 * database: pruning in small committed batches, retention of failed vs successful results, the
 * queue filter, dry runs, lock rows, and never a pending task; statistics, health numbers, show,
 * retry and delete.
 */
import { expect } from 'chai';
import { background, PermanentTaskError, schedule } from '../../core/index.js';
import { ManualClock } from '../../core/base/clock.js';
import { resetClock, setClock } from '../../core/base/clock.js';
import { connectPrivate, closeConnection } from '../../core/store/connection.js';
import { Store } from '../../core/store/store.js';
import { pruneResults } from '../../core/store/prune.js';
import {
  collectStats,
  deleteTasks,
  failedByIds,
  findFailed,
  healthNumbers,
  maxCompletedId,
  planDelete,
  retryFailed,
} from '../../core/store/admin.js';
import { taskDetail } from '../../core/store/task-detail.js';
import { taskHash } from '../../core/base/json.js';
import { contract, type TestDatabase } from '../helpers/databases.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2030, 5, 15, 12);

const job = background({ name: 'admin.job' }, function job(_n: number) {
  return 'ok';
});
const mail = background({ name: 'admin.mail', queue: 'mail' }, function mail(_to: string) {
  throw new PermanentTaskError('no');
});

interface Done {
  id: number;
  name?: string;
  queue?: string | null;
  /** Days before T0 it finished. */
  ageDays: number;
  failed?: boolean;
  args?: string;
  returnValue?: string | null;
  errors?: string | null;
  priority?: number;
}

function completedRaw(d: Done): Record<string, unknown> {
  const finished = T0 - Math.round(d.ageDays * DAY);
  const name = d.name ?? 'admin.job';
  const args = d.args ?? `[${d.id}]`;
  return {
    task_id: d.id,
    name,
    args,
    hash: taskHash(name, args),
    queue: d.queue ?? null,
    priority: d.priority ?? 0,
    run_at: finished - 1000,
    scheduled_at: finished - 1000,
    enqueued_at: finished - 2000,
    attempts: 1,
    started_at: finished - 500,
    finished_at: finished,
    failed_at: d.failed ? finished : null,
    return_value: d.failed ? null : (d.returnValue ?? '"ok"'),
    last_error: d.failed ? 'Error: no' : null,
    errors: d.errors ?? null,
    worker_id: 'w1',
  };
}

async function insertCompleted(db: TestDatabase, rows: Done[]): Promise<void> {
  const raw = rows.map(completedRaw);
  for (let i = 0; i < raw.length; i += 400) await db.store.knex(db.store.tables.completed).insert(raw.slice(i, i + 400));
}

async function count(db: TestDatabase, table: 'tasks' | 'completed' | 'locks', where?: (q: any) => void): Promise<number> {
  const q = db.store.knex(db.store.tables[table]).count({ n: '*' });
  if (where) where(q);
  const [row] = (await q) as Array<{ n: unknown }>;
  return Number(row!.n);
}

async function completedIds(db: TestDatabase): Promise<number[]> {
  const rows = (await db.store.knex(db.store.tables.completed).select('task_id').orderBy('task_id')) as Array<{ task_id: unknown }>;
  return rows.map((r) => Number(r.task_id));
}

/** Pending ids are assigned by the database; completed test rows use ids from 1,000,000 up. */
const BIG = 1_000_000;

contract('admin: prune-results', (db) => {
  const clock = new ManualClock(T0);
  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
  });
  afterEach(() => resetClock());

  it('prunes 20,000 old results in small batches, each committed on its own, and keeps recent ones and every pending task', async function () {
    this.timeout(60_000);
    const old = Array.from({ length: 20_000 }, (_, i) => ({ id: BIG + i * 2, ageDays: 40 + (i % 5), failed: i % 7 === 0 }));
    const recent = Array.from({ length: 50 }, (_, i) => ({ id: BIG + i * 2 + 1, ageDays: 1 }));
    await insertCompleted(db, [...old, ...recent]);
    clock.set(T0 - 60 * DAY);
    const pending = await Promise.all([job(1), job(2), mail('x', schedule(0, { priority: 3 }))]);
    clock.set(T0);

    // A second connection sees only committed work: after each batch the rows are gone for it.
    const other = await connectPrivate(db.store.conn.spec);
    const observer = new Store(other, db.settings.tablePrefix);
    const seen: Array<[number, number]> = [];
    const checks: Array<Promise<void>> = [];
    try {
      const report = await pruneResults(db.store, {
        days: 30,
        nowMs: clock.now(),
        batchSize: 500,
        onProgress: (deleted, total) => {
          seen.push([deleted, total]);
          if (seen.length === 3) {
            checks.push(
              (async () => {
                const [row] = (await observer.knex(observer.tables.completed).count({ n: '*' })) as Array<{ n: unknown }>;
                // At least the first three batches are committed (the prune may have gone further).
                expect(Number(row!.n)).to.be.at.most(20_050 - 1500);
              })(),
            );
          }
        },
      });
      await Promise.all(checks);
      expect(report).to.include({ dryRun: false, tasks: 20_000, locks: 0 });
      expect(report.batches).to.be.within(40, 41);
      expect(report.cutoff!.getTime()).to.equal(T0 - 30 * DAY);
      expect(seen[0]).to.deep.equal([500, 20_000]);
      expect(seen[seen.length - 1]).to.deep.equal([20_000, 20_000]);
      for (let i = 1; i < seen.length; i++) expect(seen[i]![0]).to.be.above(seen[i - 1]![0]);
    } finally {
      await closeConnection(other);
    }
    expect(await completedIds(db)).to.deep.equal(recent.map((r) => r.id));
    expect(await count(db, 'tasks')).to.equal(3);
    for (const ref of pending) expect(await db.store.findPending(ref.id)).to.not.equal(null);
  });

  it('keeps failed results for --failed-days, and prunes every failed one with 0', async () => {
    await insertCompleted(db, [
      { id: BIG + 1, ageDays: 40 },
      { id: BIG + 2, ageDays: 10 },
      { id: BIG + 3, ageDays: 40, failed: true },
      { id: BIG + 4, ageDays: 10, failed: true },
      { id: BIG + 5, ageDays: 100, failed: true },
    ]);
    const dry = await pruneResults(db.store, { days: 30, failedDays: 60, nowMs: T0, dryRun: true });
    expect(dry).to.include({ dryRun: true, tasks: 2 });
    expect(dry.failedCutoff!.getTime()).to.equal(T0 - 60 * DAY);
    expect(await count(db, 'completed')).to.equal(5);

    expect((await pruneResults(db.store, { days: 30, failedDays: 60, nowMs: T0 })).tasks).to.equal(2);
    expect(await completedIds(db)).to.deep.equal([BIG + 2, BIG + 3, BIG + 4]);

    const all = await pruneResults(db.store, { days: 30, failedDays: 0, nowMs: T0 });
    expect(all).to.include({ tasks: 2, failedCutoff: null });
    expect(await completedIds(db)).to.deep.equal([BIG + 2]);
  });

  it('uses --days for failed results too when --failed-days is not given; --days 0 prunes every result', async () => {
    await insertCompleted(db, [
      { id: BIG + 1, ageDays: 40, failed: true },
      { id: BIG + 2, ageDays: 20, failed: true },
      { id: BIG + 3, ageDays: 20 },
      { id: BIG + 4, ageDays: 0.0001 },
    ]);
    expect((await pruneResults(db.store, { days: 30, nowMs: T0 })).tasks).to.equal(1);
    expect((await pruneResults(db.store, { days: 7.5, nowMs: T0 })).tasks).to.equal(2);
    expect(await completedIds(db)).to.deep.equal([BIG + 4]);
    expect((await pruneResults(db.store, { days: 0, nowMs: T0 })).tasks).to.equal(1);
    expect(await count(db, 'completed')).to.equal(0);
  });

  it('prunes only the queues given', async () => {
    await insertCompleted(db, [
      { id: BIG + 1, ageDays: 40, queue: 'a' },
      { id: BIG + 2, ageDays: 40, queue: 'b' },
      { id: BIG + 3, ageDays: 40, queue: null },
      { id: BIG + 4, ageDays: 40, queue: 'c', failed: true },
      { id: BIG + 5, ageDays: 1, queue: 'a' },
    ]);
    expect((await pruneResults(db.store, { days: 30, queues: ['a', 'c'], nowMs: T0, dryRun: true })).tasks).to.equal(2);
    expect((await pruneResults(db.store, { days: 30, queues: ['a', 'c'], nowMs: T0 })).tasks).to.equal(2);
    expect(await completedIds(db)).to.deep.equal([BIG + 2, BIG + 3, BIG + 5]);
  });

  it('deletes old lock rows no pending task uses, and keeps the rest (dry run counts them)', async () => {
    clock.set(T0 - 40 * DAY);
    const ref = await job(7);
    await mail('y');
    clock.set(T0);
    const used = await db.store.findPending(ref.id);
    const oldAt = T0 - 40 * DAY;
    await db.store.knex(db.store.tables.locks).insert([
      { key: `hash:${used!.hash}`, locked_at: oldAt },
      { key: `hash:${'0'.repeat(40)}`, locked_at: oldAt },
      { key: `hash:${'1'.repeat(40)}`, locked_at: T0 - DAY },
      { key: 'queue:mail', locked_at: oldAt },
      { key: 'queue:gone', locked_at: oldAt },
      { key: 'other:thing', locked_at: oldAt },
    ]);
    const dry = await pruneResults(db.store, { days: 30, nowMs: T0, dryRun: true });
    expect(dry).to.include({ tasks: 0, locks: 2 });
    expect(await count(db, 'locks')).to.equal(6);
    const onlyMail = await pruneResults(db.store, { days: 30, queues: ['mail', 'gone'], nowMs: T0 });
    expect(onlyMail.locks).to.equal(1);
    const report = await pruneResults(db.store, { days: 30, nowMs: T0 });
    expect(report.locks).to.equal(1);
    const keys = ((await db.store.knex(db.store.tables.locks).select('key').orderBy('key')) as Array<{ key: string }>).map((r) => r.key);
    expect(keys).to.have.members([`hash:${used!.hash}`, `hash:${'1'.repeat(40)}`, 'queue:mail', 'other:thing']);
    expect(await count(db, 'tasks')).to.equal(2);
  });

  it('rejects negative or non-numeric days', async () => {
    for (const bad of [-1, NaN, Infinity]) {
      let err: unknown;
      await pruneResults(db.store, { days: bad, nowMs: T0 }).catch((e: unknown) => (err = e));
      expect((err as Error).name).to.equal('ValidationError');
    }
    let err: unknown;
    await pruneResults(db.store, { days: 1, failedDays: -2, nowMs: T0 }).catch((e: unknown) => (err = e));
    expect((err as Error).message).to.match(/failedDays: -2/);
  });
});

contract('admin: stats, show, retry, delete', (db) => {
  const clock = new ManualClock(T0);
  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
  });
  afterEach(() => resetClock());

  const claim = (names: string[], leaseMs = 60_000) =>
    db.store.claim({ names, queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w-test', nowMs: clock.now(), leaseMs, limit: 1 });

  it('counts per queue and state (an expired lease counts as READY), the oldest due wait and the last hour\'s failures', async () => {
    clock.set(T0 - 120_000);
    await job(1); // due 120 s ago
    clock.set(T0 - 30_000);
    await mail('a'); // mail, due 30 s ago
    await mail('b', schedule(60)); // mail, due in 30 s
    await job(2, schedule(0, { priority: 9 })); // claimed below, lease expires in 10 s
    clock.set(T0);
    const [running] = await claim(['admin.job'], 10_000);
    expect(running!.args).to.equal('[2]');
    await insertCompleted(db, [
      { id: BIG + 1, ageDays: 1 / 48, failed: true, queue: 'mail' }, // 30 minutes ago
      { id: BIG + 2, ageDays: 2 / 24, failed: true }, // 2 hours ago
      { id: BIG + 3, ageDays: 0.01 },
    ]);

    let s = await collectStats(db.store, clock.now());
    expect(s.queues).to.deep.equal([
      { queue: null, READY: 1, RUNNING: 1, SUCCESSFUL: 1, FAILED: 1 },
      { queue: 'mail', READY: 2, RUNNING: 0, SUCCESSFUL: 0, FAILED: 1 },
    ]);
    expect(s.totals).to.deep.equal({ READY: 3, RUNNING: 1, SUCCESSFUL: 1, FAILED: 2 });
    expect(s.failuresLastHour).to.equal(1);
    expect(s.oldestDue).to.include({ name: 'admin.job', waitSeconds: 120 });
    expect(s.oldestDue!.dueSince.getTime()).to.equal(T0 - 120_000);

    const mailOnly = await healthNumbers(db.store, clock.now(), ['mail']);
    expect(mailOnly.oldestDue).to.include({ name: 'admin.mail', waitSeconds: 30 });
    expect(mailOnly.failuresLastHour).to.equal(1);
    // Queues whose tasks are not counted as waiting (health leaves out paused ones): the next
    // oldest counts; failures still do.
    const notMail = await healthNumbers(db.store, clock.now(), null, ['mail']);
    expect(notMail.oldestDue).to.include({ name: 'admin.job', waitSeconds: 120 });
    const noneLeft = await healthNumbers(db.store, clock.now(), ['mail'], ['mail']);
    expect([noneLeft.oldestDue, noneLeft.failuresLastHour]).to.deep.equal([null, 1]);

    // The claimed task's worker dies: 200 s later its lease has been expired for 190 s, and it
    // is the only task left that is due.
    await db.store.knex(db.store.tables.tasks).whereNot('id', running!.id).del();
    clock.advance(200);
    s = await collectStats(db.store, clock.now());
    expect(s.totals.RUNNING).to.equal(0);
    expect(s.queues[0]).to.include({ queue: null, READY: 1, RUNNING: 0 });
    expect(s.oldestDue).to.include({ id: running!.id, waitSeconds: 190 });
    expect(s.oldestDue!.dueSince.getTime()).to.equal(T0 + 10_000);
  });

  it('shows a pending, a running and a finished task in full, and refuses an unknown id', async () => {
    const ref = await job(5, schedule(0, { verboseName: 'Job five', creator: { type: 'user', id: 42 } }));
    let d = await taskDetail(db.store, ref.id, clock.now());
    expect(d).to.include({ id: ref.id, name: 'admin.job', status: 'READY', verboseName: 'Job five', attempts: 0, workerId: null, returnValue: null });
    expect(d.args).to.deep.equal([5]);
    expect(d.creator).to.deep.equal({ type: 'user', id: '42' });
    expect(d.runAt.getTime()).to.equal(T0);
    await claim(['admin.job']);
    d = await taskDetail(db.store, ref.id, clock.now());
    expect(d).to.include({ status: 'RUNNING', workerId: 'w-test', attempts: 1 });
    expect(d.leaseUntil!.getTime()).to.equal(T0 + 60_000);
    expect(d.startedAt!.getTime()).to.equal(T0);

    const errors = JSON.stringify([{ class: 'Error', message: 'boom', stack: 'Error: boom\n    at x', attempt: 1, at: T0 - 5000, workerId: 'w1' }]);
    await insertCompleted(db, [
      { id: BIG + 1, ageDays: 0.001, returnValue: '{"sum":3}' },
      { id: BIG + 2, ageDays: 0.001, failed: true, errors },
    ]);
    const ok = await taskDetail(db.store, String(BIG + 1), clock.now());
    expect(ok).to.include({ status: 'SUCCESSFUL', workerId: 'w1' });
    expect(ok.returnValue).to.deep.equal({ sum: 3 });
    const failed = await taskDetail(db.store, String(BIG + 2), clock.now());
    expect(failed).to.include({ status: 'FAILED', returnValue: null, lastError: 'Error: no' });
    expect(failed.errors).to.have.length(1);
    expect(failed.errors![0]).to.include({ class: 'Error', message: 'boom', stack: 'Error: boom\n    at x', attempt: 1, workerId: 'w1' });

    let err: unknown;
    await taskDetail(db.store, '999999999', clock.now()).catch((e: unknown) => (err = e));
    expect((err as Error).name).to.equal('TaskNotFoundError');
  });

  it('retries failed tasks as new pending copies; the failed record stays; other ids are refused with nothing written', async () => {
    await insertCompleted(db, [
      { id: BIG + 1, ageDays: 1, failed: true, name: 'admin.mail', queue: 'mail', args: '["a@x"]', priority: 4 },
      { id: BIG + 2, ageDays: 0.01, failed: true },
      { id: BIG + 3, ageDays: 0.01 },
    ]);
    await db.store.knex(db.store.tables.completed).where('task_id', BIG + 1).update({ verbose_name: 'Mail A', creator_type: 'user', creator_id: '7', attempts: 25 });
    const pending = await job(9);

    const refuse = async (ids: string[], pattern: RegExp, name: string) => {
      let err: unknown;
      await failedByIds(db.store, ids, clock.now()).catch((e: unknown) => (err = e));
      expect((err as Error).name).to.equal(name);
      expect((err as Error).message).to.match(pattern);
    };
    await refuse([String(BIG + 1), String(BIG + 3)], /is SUCCESSFUL; only FAILED tasks can be retried/, 'ValidationError');
    await refuse([String(BIG + 1), pending.id], /is READY, not FAILED/, 'ValidationError');
    await refuse([String(BIG + 1), '424242'], /No task with id 424242/, 'TaskNotFoundError');
    expect(await count(db, 'tasks')).to.equal(1);

    clock.advance(5);
    const failed = await failedByIds(db.store, [String(BIG + 1), String(BIG + 2)], clock.now());
    const out = await retryFailed(db.store, failed, clock.now());
    expect(out.map((o) => [o.id, o.name, o.queue])).to.deep.equal([
      [String(BIG + 1), 'admin.mail', 'mail'],
      [String(BIG + 2), 'admin.job', null],
    ]);
    const copy = (await db.store.findPending(out[0]!.newId))!;
    expect(copy).to.include({
      name: 'admin.mail',
      args: '["a@x"]',
      hash: taskHash('admin.mail', '["a@x"]'),
      queue: 'mail',
      priority: 4,
      verboseName: 'Mail A',
      creatorType: 'user',
      creatorId: '7',
      attempts: 0,
      runAt: T0 + 5000,
      lockedBy: null,
      repeatEvery: 0,
      lastError: null,
    });
    expect(await count(db, 'completed')).to.equal(3);
    expect(await count(db, 'tasks')).to.equal(3);
  });

  it('finds failed tasks by time, queue and name, up to a snapshot id', async () => {
    await insertCompleted(db, [
      { id: BIG + 1, ageDays: 2, failed: true, queue: 'mail', name: 'admin.mail' },
      { id: BIG + 2, ageDays: 0.01, failed: true, queue: 'mail', name: 'admin.mail' },
      { id: BIG + 3, ageDays: 0.01, failed: true },
      { id: BIG + 4, ageDays: 0.01 },
    ]);
    const ids = (rows: Array<{ taskId: string }>) => rows.map((r) => Number(r.taskId));
    expect(ids(await findFailed(db.store, { limit: 100 }))).to.deep.equal([BIG + 1, BIG + 2, BIG + 3]);
    expect(ids(await findFailed(db.store, { sinceMs: T0 - DAY, limit: 100 }))).to.deep.equal([BIG + 2, BIG + 3]);
    expect(ids(await findFailed(db.store, { queues: ['mail'], limit: 100 }))).to.deep.equal([BIG + 1, BIG + 2]);
    expect(ids(await findFailed(db.store, { names: ['admin.job'], limit: 100 }))).to.deep.equal([BIG + 3]);
    expect(ids(await findFailed(db.store, { afterId: String(BIG + 1), upToId: String(BIG + 2), limit: 100 }))).to.deep.equal([BIG + 2]);
    expect(await maxCompletedId(db.store)).to.equal(String(BIG + 4));
  });

  it('deletes pending and finished tasks; refuses a running one unless forced; a claim in between deletes nothing', async () => {
    const a = await job(1);
    const b = await mail('b');
    await insertCompleted(db, [{ id: BIG + 1, ageDays: 1 }]);
    const [running] = await claim(['admin.job']);
    expect(running!.id).to.equal(a.id);

    let err: unknown;
    await planDelete(db.store, [b.id, a.id], clock.now(), false).catch((e: unknown) => (err = e));
    expect((err as Error).message).to.match(/is RUNNING .*bgtasks cancel .*--force/);
    err = undefined;
    await planDelete(db.store, [b.id, '777777'], clock.now(), false).catch((e: unknown) => (err = e));
    expect((err as Error).name).to.equal('TaskNotFoundError');
    expect(await count(db, 'tasks')).to.equal(2);

    // Planned while READY, claimed before the delete: the transaction rolls back.
    const c = await job(3);
    const plan = await planDelete(db.store, [String(BIG + 1), b.id, c.id], clock.now(), false);
    expect(plan.map((p) => p.status)).to.deep.equal(['SUCCESSFUL', 'READY', 'READY']);
    await claim(['admin.job']);
    err = undefined;
    await deleteTasks(db.store, plan, clock.now(), false).catch((e: unknown) => (err = e));
    expect((err as Error).name).to.equal('TaskChangedError');
    expect((err as Error).message).to.match(new RegExp(`#${c.id} started running meanwhile; nothing was deleted`));
    expect(await count(db, 'tasks')).to.equal(3);
    expect(await count(db, 'completed')).to.equal(1);

    // Forced: running ones go too.
    const all = await planDelete(db.store, [String(BIG + 1), a.id, b.id, c.id], clock.now(), true);
    expect(await deleteTasks(db.store, all, clock.now(), true)).to.equal(4);
    expect(await count(db, 'tasks')).to.equal(0);
    expect(await count(db, 'completed')).to.equal(0);

    // An expired lease is not RUNNING: deletable without --force.
    const d = await job(4);
    await claim(['admin.job'], 1000);
    clock.advance(2);
    const p = await planDelete(db.store, [d.id], clock.now(), false);
    expect(p[0]!.status).to.equal('READY');
    expect(await deleteTasks(db.store, p, clock.now(), false)).to.equal(1);
  });
});

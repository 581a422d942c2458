/**
 * The dashboard's DatabaseSource on every database: each read with real rows (an expired lease
 * counts READY), keyset pages that neither skip nor repeat across equal sort values in every
 * order, every filter, hostile cursors, and each action with its outcomes (changes, refusals,
 * changedMeanwhile), run-now included.
 */
import { expect } from 'chai';
import { DatabaseSource } from '../../core/dashboard/database-source.js';
import type { TaskPageRequest, TaskSortKey } from '../../core/dashboard/source.js';
import { registerSchedule } from '../../core/store/schedules.js';
import { beatAlive, registerWorker } from '../../core/store/workers.js';
import { runTaskNow } from '../../core/store/run-now.js';
import type { ErrorRecord, TaskRow } from '../../core/types.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { claimOne, newTask, seed, success, JOB, OTHER } from '../helpers/store-fixtures.js';
import type { NewTask } from '../../core/store/rows.js';

const T0 = Date.UTC(2031, 5, 7, 8, 30, 15, 250);
const MIN = 60_000;

function record(cls: string, message: string, at: number, attempt = 1): ErrorRecord {
  return { class: cls, message, stack: `${cls}: ${message}\n    at job (tasks.ts:1:1)`, attempt, at, workerId: 'worker-a' };
}

contract('dashboard database source', (db) => {
  const { clock } = manualClockSuite(db, T0);
  const source = () => new DatabaseSource({ store: db.store, now: () => clock.now() });

  /** One task through the store's own verbs: claimed, finished or failed as asked. */
  async function make(kind: 'ready' | 'running' | 'expired' | 'ok' | 'failed', extra: Partial<NewTask> = {}, err?: ErrorRecord): Promise<string> {
    const claimAt = kind === 'expired' ? T0 - 10 * MIN : T0;
    const [id] = await seed(db, [newTask({ runAt: claimAt - 1000, enqueuedAt: claimAt - 2000, ...extra })]);
    if (kind === 'ready') return id!;
    const task: TaskRow = await claimOne(db, id!, { nowMs: claimAt, leaseMs: 60_000 });
    if (kind === 'ok') {
      const out = await db.store.completeMany([success(task, T0 - 2 * MIN, '{"sent":true}')], T0);
      expect(out.done).to.have.length(1);
    }
    if (kind === 'failed') {
      const ok = await db.store.fail(task, { nowMs: T0 - 3 * MIN, record: err ?? record('TypeError', 'boom', T0 - 3 * MIN), successorAt: null, attempts: 1 });
      expect(ok).to.equal(true);
    }
    return id!;
  }

  it('overview: counts by queue and status (an expired lease counts READY), oldest due, failures, throughput, live workers', async () => {
    const running = await make('running', { queue: 'mail' });
    const expired = await make('expired', { queue: 'mail' });
    await make('ok');
    await make('failed', { queue: 'mail' });
    await make('ready', { runAt: T0 + 3_600_000 });
    await registerWorker(db.store, { id: 'w-live', host: 'h', pid: 1, version: '1', queues: null, excludeQueues: null, names: [JOB], limits: {}, concurrency: 2, startedAt: T0 - MIN, heartbeatAt: T0 - 1000, heartbeatMs: 5000, runUntil: null });
    await registerWorker(db.store, { id: 'w-lost', host: 'h', pid: 2, version: '1', queues: null, excludeQueues: null, names: [JOB], limits: {}, concurrency: 2, startedAt: T0 - 30 * MIN, heartbeatAt: T0 - 20 * MIN, heartbeatMs: 5000, runUntil: null });
    const o = await source().overview();
    expect(o.at.getTime()).to.equal(T0);
    expect(o.totals).to.deep.equal({ READY: 2, RUNNING: 1, SUCCESSFUL: 1, FAILED: 1 });
    expect(o.queues).to.deep.equal([
      { queue: null, READY: 1, RUNNING: 0, SUCCESSFUL: 1, FAILED: 0 },
      { queue: 'mail', READY: 1, RUNNING: 1, SUCCESSFUL: 0, FAILED: 1 },
    ]);
    // The expired lease ran out at T0 - 9 min: it has waited longest.
    expect(o.oldestDue).to.include({ id: expired });
    expect(o.oldestDue!.dueSince.getTime()).to.equal(T0 - 9 * MIN);
    expect(o.failuresLastHour).to.equal(1);
    expect(o.throughput).to.have.length(60);
    expect(o.throughput[59]!.minute.getTime()).to.equal(Math.floor(T0 / MIN) * MIN);
    const byMinute = new Map(o.throughput.map((m) => [m.minute.getTime(), m]));
    expect(byMinute.get(Math.floor((T0 - 2 * MIN) / MIN) * MIN)).to.include({ succeeded: 1, failed: 0 });
    expect(byMinute.get(Math.floor((T0 - 3 * MIN) / MIN) * MIN)).to.include({ succeeded: 0, failed: 1 });
    expect(o.throughput.reduce((n, m) => n + m.succeeded + m.failed, 0)).to.equal(2);
    expect(o.workersAlive).to.equal(1);
    expect(running).to.be.a('string');
  });

  it('lists both tables in every order, and keyset pages walk forward and back without skips or repeats across equal values', async () => {
    // Equal sort values on purpose: three tasks share each enqueue time, run time and priority.
    for (let i = 0; i < 4; i++) await make('ok', { enqueuedAt: T0 - 50_000 + (i % 2) * 1000, priority: i % 2 });
    for (let i = 0; i < 3; i++) await make('failed', { enqueuedAt: T0 - 50_000, priority: 1 });
    await make('running', { enqueuedAt: T0 - 49_000 });
    await make('expired', { enqueuedAt: T0 - 49_000 });
    for (let i = 0; i < 5; i++) await make('ready', { enqueuedAt: T0 - 50_000 + (i % 2) * 1000, runAt: T0 + (i % 2) * MIN, priority: i % 3 });
    const s = source();
    const keys: TaskSortKey[] = ['enqueuedAt', 'runAt', 'finishedAt', 'priority'];
    for (const key of keys) {
      for (const direction of ['asc', 'desc'] as const) {
        const base: TaskPageRequest = { filter: {}, sort: { key, direction }, limit: 500, cursor: null };
        const all = (await s.listTasks(base)).rows.map((r) => r.id);
        expect(all, `${key} ${direction}`).to.have.length(14);
        expect(new Set(all).size).to.equal(14);
        const forward: string[] = [];
        const pages: Array<{ prev: string | null; ids: string[] }> = [];
        let cursor: string | null = null;
        for (let guard = 0; guard < 20; guard++) {
          const page = await s.listTasks({ ...base, limit: 3, cursor });
          if (cursor === null) expect(page.prev).to.equal(null);
          forward.push(...page.rows.map((r) => r.id));
          pages.push({ prev: page.prev, ids: page.rows.map((r) => r.id) });
          if (!page.next) break;
          cursor = page.next;
        }
        expect(forward, `forward ${key} ${direction}`).to.deep.equal(all);
        // Back from the last page: each prev page is exactly the page before it.
        let prev = pages[pages.length - 1]!.prev;
        const backward: string[][] = [pages[pages.length - 1]!.ids];
        while (prev) {
          const page = await s.listTasks({ ...base, limit: 3, cursor: prev });
          backward.unshift(page.rows.map((r) => r.id));
          prev = page.prev;
        }
        expect(backward.flat(), `backward ${key} ${direction}`).to.deep.equal(all);
        if (key === 'finishedAt') {
          // Pending tasks (no finish time) come last in both directions.
          const statuses = (await s.listTasks(base)).rows.map((r) => r.status);
          expect(statuses.slice(-7).every((x) => x === 'READY' || x === 'RUNNING')).to.equal(true);
        }
      }
    }
  });

  it('filters by status, queue (and no queue), name, argument text (exact case), error class and time range; counts agree', async () => {
    const mailReady = await make('ready', { queue: 'mail', args: '["Alice@Example.com"]' });
    const plainReady = await make('ready', { name: OTHER, args: '["bob"]', runAt: T0 + MIN });
    const running = await make('running', { queue: 'mail' });
    const expired = await make('expired');
    const ok = await make('ok', { queue: 'mail' });
    const failedType = await make('failed', {}, record('TypeError', 'bad type', T0 - 3 * MIN));
    const failedRange = await make('failed', { name: OTHER }, record('RangeError', 'too far', T0 - 3 * MIN));
    const s = source();
    const ids = async (filter: TaskPageRequest['filter']) => {
      const rows = (await s.listTasks({ filter, sort: { key: 'enqueuedAt', direction: 'asc' }, limit: 100, cursor: null })).rows.map((r) => r.id).sort();
      expect(await s.countTasks(filter), JSON.stringify(filter)).to.equal(rows.length);
      return rows;
    };
    const sorted = (...xs: string[]) => [...xs].sort();
    expect(await ids({ statuses: ['READY'] })).to.deep.equal(sorted(mailReady, plainReady, expired));
    expect(await ids({ statuses: ['RUNNING'] })).to.deep.equal([running]);
    expect(await ids({ statuses: ['SUCCESSFUL', 'FAILED'] })).to.deep.equal(sorted(ok, failedType, failedRange));
    expect(await ids({ queues: ['mail'] })).to.deep.equal(sorted(mailReady, running, ok));
    expect(await ids({ queues: [null] })).to.deep.equal(sorted(plainReady, expired, failedType, failedRange));
    expect(await ids({ queues: ['mail', null] })).to.have.length(7);
    expect(await ids({ names: [OTHER] })).to.deep.equal(sorted(plainReady, failedRange));
    expect(await ids({ argsContain: 'Alice@Example' })).to.deep.equal([mailReady]);
    expect(await ids({ argsContain: 'alice@example' })).to.deep.equal([]);
    expect(await ids({ errorClass: 'RangeError' })).to.deep.equal([failedRange]);
    expect(await ids({ errorClass: 'TypeError', statuses: ['FAILED'] })).to.deep.equal([failedType]);
    expect(await ids({ range: { field: 'runAt', from: new Date(T0 + 1) } })).to.deep.equal([plainReady]);
    expect(await ids({ range: { field: 'finishedAt', from: new Date(T0 - 150_000), to: new Date(T0) } })).to.deep.equal([ok]);
    expect(await ids({ range: { field: 'enqueuedAt', to: new Date(T0 - 10 * MIN) } })).to.deep.equal([expired]);
    const rows = (await s.listTasks({ filter: { errorClass: 'RangeError' }, sort: { key: 'enqueuedAt', direction: 'desc' }, limit: 10, cursor: null })).rows;
    expect(rows[0]).to.include({ name: OTHER, status: 'FAILED', attempts: 1 });
    expect(rows[0]!.lastError).to.deep.equal({ class: 'RangeError', message: 'too far' });
  });

  it('refuses a cursor it did not make, or made for another sort, with a ValidationError', async () => {
    await make('ready');
    await make('ready');
    const s = source();
    const base: TaskPageRequest = { filter: {}, sort: { key: 'enqueuedAt', direction: 'desc' }, limit: 1, cursor: null };
    const next = (await s.listTasks(base)).next!;
    const hostile = [
      'not-base64!',
      Buffer.from('{"k":"enqueuedAt","d":"desc","v":1,"id":"1 OR 1=1","w":"after"}').toString('base64url'),
      Buffer.from('{"k":"enqueuedAt","d":"desc","v":"1; DROP TABLE x","id":"1","w":"after"}').toString('base64url'),
      Buffer.from('[1,2,3]').toString('base64url'),
      'A'.repeat(1000),
    ];
    for (const cursor of hostile) {
      const err = await s.listTasks({ ...base, cursor }).then(() => null, (e: unknown) => e as Error);
      expect(err?.name, cursor).to.equal('ValidationError');
      expect(err!.message).to.match(/cursor/);
    }
    const other = await s.listTasks({ ...base, sort: { key: 'runAt', direction: 'desc' }, cursor: next }).then(() => null, (e: unknown) => e as Error);
    expect(other?.message).to.match(/another sort order/);
  });

  it('reads one task: arguments, result, errors, attempts, lease, chain; null for an unknown id', async () => {
    const s = source();
    const ok = await make('ok', { verboseName: 'Welcome mail', creatorType: 'user', creatorId: '7' });
    const t = await s.getTask(ok);
    expect(t).to.include({ id: ok, status: 'SUCCESSFUL', verboseName: 'Welcome mail', result: '{"sent":true}', attempts: 1 });
    expect(t!.creator).to.deep.equal({ type: 'user', id: '7' });
    expect(t!.attemptHistory.map((a) => a.outcome)).to.deep.equal(['succeeded']);
    const running = await make('running');
    const r = await s.getTask(running);
    expect(r!.lease).to.include({ workerId: 'worker-a' });
    expect(r!.lease!.until.getTime()).to.equal(T0 + 60_000);
    expect(r!.attemptHistory.map((a) => a.outcome)).to.deep.equal(['running']);
    const failed = await make('failed', {}, record('RangeError', 'too far', T0 - 3 * MIN));
    const f = await s.getTask(failed);
    expect(f!.errors).to.have.length(1);
    expect(f!.errors[0]).to.include({ class: 'RangeError', message: 'too far', attempt: 1 });
    expect(f!.errors[0]!.stack).to.match(/^RangeError: too far/);
    expect(f!.attemptHistory.map((a) => a.outcome)).to.deep.equal(['failed']);
    // A repeat chain: the finished one, then its successor.
    const first = await make('ok', { repeatEvery: 60, args: '["chain"]' });
    const [second] = await seed(db, [newTask({ repeatEvery: 60, args: '["chain"]', runAt: T0 + MIN })]);
    expect(await s.getTask(first)).to.include({ predecessorId: null, successorId: second });
    expect(await s.getTask(second!)).to.include({ predecessorId: first, successorId: null });
    expect(await s.getTask('999999999')).to.equal(null);
    expect(await s.getTask('nope')).to.equal(null);
    // Past the BIGINT range: not found, not PostgreSQL's "out of range for type bigint".
    expect(await s.getTask('9223372036854775808')).to.equal(null);
  });

  it('groups failures by task name and last error class, largest first, with the latest message', async () => {
    await make('failed', {}, record('TypeError', 'first', T0 - 3 * MIN));
    const latest = await make('failed', {}, record('TypeError', 'second', T0 - 3 * MIN));
    await make('failed', { name: OTHER }, record('RangeError', 'far', T0 - 3 * MIN));
    const old = await make('failed', { name: OTHER }, record('Error', 'old', T0 - 3 * MIN));
    await db.store.knex(db.store.tables.completed).where('task_id', old).update({ failed_at: T0 - 10 * 86_400_000, finished_at: T0 - 10 * 86_400_000 });
    const s = source();
    const groups = await s.failureGroups({ since: new Date(T0 - 86_400_000), limit: 10 });
    expect(groups.map((g) => [g.name, g.errorClass, g.count])).to.deep.equal([
      [JOB, 'TypeError', 2],
      [OTHER, 'RangeError', 1],
    ]);
    expect(groups[0]).to.include({ sampleTaskId: latest, sampleMessage: 'second' });
    expect(groups[0]!.lastFailedAt.getTime()).to.equal(T0 - 3 * MIN);
    expect(await s.failureGroups({ since: null, limit: 10 })).to.have.length(3);
    expect(await s.failureGroups({ since: null, limit: 1 })).to.have.length(1);
  });

  it('lists schedules with their pending task, workers alive and gone with their running tasks, and filter choices', async () => {
    await registerSchedule(db.store, { name: JOB, key: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', args: '[]', catchUp: 'skip' }, T0 - MIN, 'w-live');
    const [slot] = await seed(db, [newTask({ recurringKey: 'nightly', runAt: T0 + 3_600_000 })]);
    const s = source();
    const [sch] = await s.schedules();
    expect(sch).to.include({ name: JOB, key: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', pendingCount: 1, stale: false, lastSeenBy: 'w-live' });
    expect(sch!.pendingTask).to.deep.include({ id: slot, status: 'READY' });
    expect(sch!.nextSlot!.getTime()).to.be.greaterThan(T0);
    const running = await make('running', { queue: 'mail' });
    await registerWorker(db.store, { id: 'worker-a', host: 'box', pid: 42, version: '1.2.3', queues: ['mail'], excludeQueues: null, names: [JOB], limits: {}, concurrency: 4, startedAt: T0 - MIN, heartbeatAt: T0 - 1000, heartbeatMs: 5000, runUntil: null });
    await registerWorker(db.store, { id: 'worker-gone', host: 'box', pid: 43, version: '1.2.3', queues: null, excludeQueues: null, names: [JOB], limits: {}, concurrency: 1, startedAt: T0 - 9 * MIN, heartbeatAt: T0 - 8 * MIN, heartbeatMs: 5000, runUntil: null });
    // Heartbeat as old as worker-gone's, but a liveness beat 2 s ago: its event loop is blocked.
    await registerWorker(db.store, { id: 'worker-blocked', host: 'box', pid: 44, version: '1.2.3', queues: null, excludeQueues: null, names: [JOB], limits: {}, concurrency: 1, startedAt: T0 - 10 * MIN, heartbeatAt: T0 - 8 * MIN, heartbeatMs: 5000, runUntil: null });
    await beatAlive(db.store, 'worker-blocked', T0 - 2000, 12_000);
    const w = await s.workers();
    expect(w.alive.map((x) => [x.id, x.state])).to.deep.equal([['worker-a', 'alive'], ['worker-blocked', 'blocked']]);
    expect(w.alive[1]!.goneAt).to.equal(null);
    expect(w.alive[0]).to.include({ host: 'box', pid: 42, version: '1.2.3', concurrency: 4, state: 'alive' });
    expect(w.alive[0]!.running.map((x) => x.id)).to.deep.equal([running]);
    expect(w.gone.map((x) => [x.id, x.state])).to.deep.equal([['worker-gone', 'lost']]);
    await make('ok', { name: OTHER });
    const c = await s.filterChoices();
    expect(c.taskNames).to.deep.equal([JOB, OTHER].sort());
    expect(c.queues).to.deep.equal([null, 'mail']);
  });

  it('retry: a FAILED task gets a new READY copy; other statuses and unknown ids are refused', async () => {
    const failed = await make('failed');
    const ok = await make('ok');
    const s = source();
    const r = await s.retry({ ids: [failed, ok, '987654321', '9999999999999999999'] });
    expect(r).to.include({ action: 'retry', changed: 1, unchanged: 0, refused: 3, itemsOmitted: 0 });
    const [a, b, c, d] = r.items;
    expect(d).to.include({ id: '9999999999999999999', outcome: 'notFound', name: null });
    expect(a).to.include({ id: failed, outcome: 'retried', before: 'FAILED', after: 'FAILED' });
    expect((await s.getTask(a!.newId!))!).to.include({ status: 'READY', attempts: 0, name: JOB });
    expect(b).to.include({ id: ok, outcome: 'wrongStatus', before: 'SUCCESSFUL' });
    expect(c).to.include({ id: '987654321', outcome: 'notFound', name: null });
  });

  it('cancel: READY becomes FAILED, RUNNING gets a request (then unchanged), a finished task is refused', async () => {
    const ready = await make('ready');
    const running = await make('running');
    const ok = await make('ok');
    const s = source();
    const r = await s.cancel({ ids: [ready, running, ok] });
    expect(r.items.map((i) => [i.id, i.outcome, i.before, i.after])).to.deep.equal([
      [ready, 'cancelled', 'READY', 'FAILED'],
      [running, 'cancelRequested', 'RUNNING', 'RUNNING'],
      [ok, 'wrongStatus', 'SUCCESSFUL', 'SUCCESSFUL'],
    ]);
    expect((await s.getTask(ready))!.errors[0]!.class).to.equal('CancelledError');
    const again = await s.cancel({ ids: [running] });
    expect(again).to.include({ changed: 0, unchanged: 1, refused: 0 });
  });

  it('delete: READY and finished tasks go, RUNNING is refused, a task claimed meanwhile is changedMeanwhile', async () => {
    const ready = await make('ready');
    const failed = await make('failed');
    const running = await make('running');
    const s = source();
    const r = await s.delete({ ids: [ready, failed, running] });
    expect(r.items.map((i) => [i.id, i.outcome, i.after])).to.deep.equal([
      [ready, 'deleted', null],
      [failed, 'deleted', null],
      [running, 'wrongStatus', 'RUNNING'],
    ]);
    expect(await s.getTask(ready)).to.equal(null);
    // Claimed between the read and the guarded delete: refused, nothing deleted.
    const racing = await make('ready');
    const find = db.store.findPending.bind(db.store);
    let claimed = false;
    db.store.findPending = async (id, trx) => {
      const row = await find(id, trx);
      if (id === racing && !claimed) {
        claimed = true;
        await claimOne(db, racing, { nowMs: T0, leaseMs: 60_000 });
      }
      return row;
    };
    try {
      const raced = await s.delete({ ids: [racing] });
      expect(raced.items[0]).to.include({ outcome: 'changedMeanwhile', before: 'READY', after: 'RUNNING' });
    } finally {
      db.store.findPending = find;
    }
    expect((await s.getTask(racing))!.status).to.equal('RUNNING');
  });

  it('run now: a READY task due later becomes due now; one due already is unchanged; RUNNING is refused; a move meanwhile is changedMeanwhile', async () => {
    const later = await make('ready', { runAt: T0 + 3_600_000 });
    const due = await make('ready');
    const running = await make('running');
    const s = source();
    const r = await s.runNow({ ids: [later, due, running] });
    expect(r.items.map((i) => [i.id, i.outcome])).to.deep.equal([
      [later, 'movedToNow'],
      [due, 'unchanged'],
      [running, 'wrongStatus'],
    ]);
    expect(r).to.include({ changed: 1, unchanged: 1, refused: 1 });
    expect((await s.getTask(later))!.runAt.getTime()).to.equal(T0);
    // Rescheduled by someone else between the read and the guarded write: left as they made it.
    const moving = await make('ready', { runAt: T0 + 7_200_000 });
    const find = db.store.findPending.bind(db.store);
    db.store.findPending = async (id, trx) => {
      const row = await find(id, trx);
      if (id === moving) await db.store.knex(db.store.tables.tasks).where('id', moving).update({ run_at: T0 + 9_000_000 });
      return row;
    };
    try {
      expect((await runTaskNow(db.store, moving, T0)).outcome).to.equal('changedMeanwhile');
    } finally {
      db.store.findPending = find;
    }
    expect((await s.getTask(moving))!.runAt.getTime()).to.equal(T0 + 9_000_000);
  });

  it('an action on a filter works through every matching task in chunks, and reports counts with a bounded item list', async () => {
    const many = Array.from({ length: 230 }, (_, i) => newTask({ name: OTHER, runAt: T0 + MIN + i }));
    await seed(db, many);
    await make('ready', { runAt: T0 + MIN });
    const s = source();
    expect(await s.countTasks({ names: [OTHER], statuses: ['READY'] })).to.equal(230);
    const r = await s.runNow({ filter: { names: [OTHER], statuses: ['READY'] } });
    expect(r).to.include({ changed: 230, unchanged: 0, refused: 0, itemsOmitted: 30 });
    expect(r.items).to.have.length(200);
    expect(await s.countTasks({ names: [OTHER], range: { field: 'runAt', to: new Date(T0 + 1) } })).to.equal(230);
    expect(await s.countTasks({ names: [JOB], range: { field: 'runAt', to: new Date(T0 + 1) } })).to.equal(0);
    const d = await s.delete({ filter: { names: [OTHER] } });
    expect(d.changed).to.equal(230);
    expect(await s.countTasks({})).to.equal(1);
  });
});

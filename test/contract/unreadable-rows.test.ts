/**
 * Rows whose JSON columns (arguments, return value, error history) hold text bgtasks cannot read
 * back, stored by another program or by hand, on every database: the listing, a result, a task's
 * full record and the statistics still work and mark the row; only reading the unreadable field
 * itself throws; the worker still fails such a task for good.
 */
import { expect } from 'chai';
import { background, getResult, listTasks, CorruptDataError, TaskFailedError, type TaskResult } from '../../core/index.js';
import { taskDetail } from '../../core/store/task-detail.js';
import { collectStats } from '../../core/store/admin.js';
import { taskHash } from '../../core/base/json.js';
import { contract, type TestDatabase } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const T0 = Date.UTC(2030, 5, 15, 12);
/** Ids far above what the suite's own inserts reach. */
const BIG = 900_000_000;

const echo = background({ name: 'rows.echo' }, function echo(n: number) {
  return n;
});

interface RowText {
  args?: string;
  errors?: string | null;
  returnValue?: string | null;
  failed?: boolean;
}

/** A pending row written straight into the table, as another program would. */
async function insertPending(db: TestDatabase, id: number, o: RowText): Promise<string> {
  const args = o.args ?? '[1]';
  await db.store.knex(db.store.tables.tasks).insert({
    id,
    name: 'rows.echo',
    args,
    hash: taskHash('rows.echo', args),
    priority: 0,
    run_at: T0 - 1000,
    scheduled_at: T0 - 1000,
    enqueued_at: T0 - 2000,
    attempts: 0,
    errors: o.errors ?? null,
  });
  return String(id);
}

/** A finished row written straight into the completed table. */
async function insertCompleted(db: TestDatabase, id: number, o: RowText): Promise<string> {
  const args = o.args ?? '[1]';
  await db.store.knex(db.store.tables.completed).insert({
    task_id: id,
    name: 'rows.echo',
    args,
    hash: taskHash('rows.echo', args),
    priority: 0,
    run_at: T0 - 3000,
    scheduled_at: T0 - 3000,
    enqueued_at: T0 - 4000,
    attempts: 1,
    started_at: T0 - 2000,
    finished_at: T0 - 1000 - (id % 100),
    failed_at: o.failed ? T0 - 1000 : null,
    return_value: o.returnValue ?? null,
    last_error: o.failed ? 'Error: no' : null,
    errors: o.errors ?? null,
    worker_id: 'w1',
  });
  return String(id);
}

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

const byId = (list: TaskResult[], id: string): TaskResult => {
  const r = list.find((t) => t.id === id);
  expect(r, `task #${id} in the listing`).to.not.equal(undefined);
  return r!;
};

contract('unreadable rows: listing, results, show and stats', (db) => {
  const { drain } = manualClockSuite(db, T0);

  it('lists every task with its id when a pending and a finished row hold arguments that are not JSON, and marks those two', async () => {
    const good = await echo(7);
    const badPending = await insertPending(db, BIG + 1, { args: '{bad' });
    const badDone = await insertCompleted(db, BIG + 2, { args: '{"a":', failed: true });
    const goodDone = await insertCompleted(db, BIG + 3, { returnValue: '5' });

    const list = await listTasks();
    expect(list.map((t) => t.id).sort()).to.deep.equal([good.id, badPending, badDone, goodDone].sort());

    const p = byId(list, badPending);
    expect(p.status).to.equal('READY');
    expect(p.unreadable?.args).to.include({ text: '{bad', reason: 'not valid JSON' });
    expect(p.unreadable!.args!.parseError).to.be.a('string').and.not.equal('');
    const err = thrown(() => p.args);
    expect(err).to.be.instanceOf(CorruptDataError);
    expect(err.message).to.contain(`rows.echo #${badPending}`).and.contain('arguments are not valid JSON');

    const d = byId(list, badDone);
    expect(d.status).to.equal('FAILED');
    expect(d.unreadable?.args).to.include({ text: '{"a":', reason: 'not valid JSON' });
    expect(thrown(() => d.args)).to.be.instanceOf(CorruptDataError);

    expect(byId(list, good.id).unreadable).to.equal(null);
    expect(byId(list, good.id).args).to.deep.equal([7]);
    expect(byId(list, goodDone).returnValue).to.equal(5);

    // JSON never throws: the unreadable field is null and `unreadable` holds its text.
    const json = JSON.parse(JSON.stringify(list)) as Array<Record<string, any>>;
    const pj = json.find((t) => t.id === badPending)!;
    expect(pj.args).to.equal(null);
    expect(pj.unreadable.args).to.include({ text: '{bad', reason: 'not valid JSON' });
    expect(json.find((t) => t.id === good.id)!).to.include({ unreadable: null });

    // Read by id, and filtered by state, the rows are found the same way.
    expect((await getResult(badPending)).unreadable?.args?.text).to.equal('{bad');
    expect((await listTasks({ state: 'FAILED' })).map((t) => t.id)).to.deep.equal([badDone]);
  });

  it('marks a return value, an error history or arguments of the wrong shape; only reading that field throws', async () => {
    const badReturn = await insertCompleted(db, BIG + 11, { returnValue: 'not json' });
    const badErrors = await insertCompleted(db, BIG + 12, { failed: true, errors: '[{"class":"Error","mess' });
    const notArray = await insertCompleted(db, BIG + 13, { args: '{"a":1}', returnValue: '1' });
    const errorsNotList = await insertPending(db, BIG + 14, { errors: '{"class":"Error"}' });
    const list = await listTasks();
    expect(list).to.have.length(4);

    const r = byId(list, badReturn);
    expect(r.status).to.equal('SUCCESSFUL');
    expect(r.args).to.deep.equal([1]);
    expect(r.unreadable?.returnValue).to.include({ text: 'not json', reason: 'not valid JSON' });
    const rv = thrown(() => r.returnValue);
    expect(rv).to.be.instanceOf(CorruptDataError);
    expect(rv.message).to.contain(`#${badReturn}`).and.contain('return value is not valid JSON');
    expect(JSON.parse(JSON.stringify(r))).to.include({ returnValue: null });

    const e = byId(list, badErrors);
    expect(e.unreadable?.errors).to.include({ text: '[{"class":"Error","mess', reason: 'not valid JSON' });
    expect(thrown(() => e.errors)).to.be.instanceOf(CorruptDataError);
    // A failed task still says it failed (its last error cannot be quoted).
    expect(thrown(() => e.returnValue)).to.be.instanceOf(TaskFailedError);
    expect(JSON.parse(JSON.stringify(e))).to.include({ errors: null, status: 'FAILED' });

    const a = byId(list, notArray);
    expect(a.unreadable).to.deep.equal({ args: { text: '{"a":1}', reason: 'not a JSON array', parseError: null } });
    expect(a.returnValue).to.equal(1);

    const n = byId(list, errorsNotList);
    expect(n.unreadable).to.deep.equal({ errors: { text: '{"class":"Error"}', reason: 'not a JSON array of error records', parseError: null } });
  });

  it('shows the full record of such a task (bgtasks show) and counts it in the statistics (bgtasks stats)', async () => {
    const badPending = await insertPending(db, BIG + 21, { args: '{bad', errors: 'oops' });
    const badDone = await insertCompleted(db, BIG + 22, { args: '[1', returnValue: '{' });

    const p = await taskDetail(db.store, badPending, T0);
    expect(p).to.include({ id: badPending, status: 'READY', args: null, errors: null });
    expect(p.unreadable).to.deep.equal({
      args: { text: '{bad', reason: 'not valid JSON', parseError: p.unreadable!.args!.parseError },
      errors: { text: 'oops', reason: 'not valid JSON', parseError: p.unreadable!.errors!.parseError },
    });
    const d = await taskDetail(db.store, badDone, T0);
    expect(d).to.include({ id: badDone, status: 'SUCCESSFUL', args: null, returnValue: null });
    expect(d.unreadable?.args?.text).to.equal('[1');
    expect(d.unreadable?.returnValue?.text).to.equal('{');

    const s = await collectStats(db.store, T0);
    expect(s.totals).to.deep.equal({ READY: 1, RUNNING: 0, SUCCESSFUL: 1, FAILED: 0 });
    expect(s.oldestDue).to.include({ id: badPending });
  });

  it('the worker fails a task whose arguments are not JSON for good, and the listing still shows it after the move', async () => {
    const bad = await insertPending(db, BIG + 31, { args: '{bad' });
    const summary = await drain();
    expect(summary.failed).to.equal(1);
    const r = await getResult(bad);
    expect(r.status).to.equal('FAILED');
    expect(r.attempts).to.equal(1);
    expect(r.errors.map((e) => e.exceptionClass)).to.deep.equal(['PermanentTaskError']);
    expect(r.errors[0]!.message).to.contain('its stored arguments are not valid JSON');
    const [listed] = await listTasks();
    expect(listed!.id).to.equal(bad);
    expect(listed!.unreadable?.args?.text).to.equal('{bad');
  });
});

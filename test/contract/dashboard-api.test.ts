/**
 * The public API of issue 16 on every database: `runNow(id | ids)` (moves a future READY task to
 * now; an unknown id changes nothing) and `createDashboard({ database, tablePrefix })`, which
 * reads the application's own tables (opened on the first request) and masks nothing it need not.
 */
import { expect } from 'chai';
import { createDashboard, runNow } from '../../core/index.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { newTask, seed } from '../helpers/store-fixtures.js';
import * as m006 from '../../migrations/006_dashboard.js';

const T0 = Date.UTC(2031, 8, 9, 10, 11, 12, 130);

contract('runNow() and createDashboard()', (db) => {
  manualClockSuite(db, T0);

  it('runNow moves a READY task due later to now, leaves a due one, and refuses an unknown id before changing anything', async () => {
    const [later, due] = await seed(db, [newTask({ runAt: T0 + 3_600_000 }), newTask({ runAt: T0 - 1000 })]);
    const err = await runNow([later!, '987654321']).then(() => null, (e: unknown) => e as Error);
    expect(err?.name).to.equal('TaskNotFoundError');
    expect((await db.store.findPending(later!))!.runAt).to.equal(T0 + 3_600_000);
    const one = await runNow(later!);
    expect(one).to.deep.equal({ id: later, name: one.name, outcome: 'movedToNow', status: 'READY', runAt: T0 });
    expect((await db.store.findPending(later!))!.runAt).to.equal(T0);
    const both = await runNow([{ id: later! }, Number(due)]);
    expect(both.map((r) => r.outcome)).to.deep.equal(['alreadyDue', 'alreadyDue']);
    const bad = await runNow('x1' as string).then(() => null, (e: unknown) => e as Error);
    expect(bad?.name).to.equal('TaskNotFoundError');
  });

  it('createDashboard({ database, tablePrefix }) serves the overview and tasks of those tables', async () => {
    await seed(db, [newTask({ runAt: T0 - 1000 }), newTask({ runAt: T0 + 60_000, queue: 'mail' })]);
    const dashboard = createDashboard({ database: db.url, tablePrefix: db.settings.tablePrefix, now: () => T0, logger: { error: (m) => expect.fail(m) } });
    const overview = await dashboard.fetch(new Request('http://localhost/api/overview'));
    expect(overview.status).to.equal(200);
    const body = (await overview.json()) as { totals: Record<string, number> };
    expect(body.totals).to.deep.equal({ READY: 2, RUNNING: 0, SUCCESSFUL: 0, FAILED: 0 });
    const tasks = (await (await dashboard.fetch(new Request('http://localhost/api/tasks?queue=mail'))).json()) as { rows: unknown[] };
    expect(tasks.rows).to.have.length(1);
    expect(() => createDashboard({ source: {} as never, database: db.url })).to.throw(/either a `source`/);
  });

  it('GET /metrics of createDashboard({ database }) counts the queues from the tables, one query for scrapes within 5 s', async () => {
    await seed(db, [newTask({ runAt: T0 - 1000, queue: 'mail' }), newTask({ runAt: T0 - 500, queue: 'mail' }), newTask({ runAt: T0 + 60_000 })]);
    let now = T0;
    const dashboard = createDashboard({ database: db.url, tablePrefix: db.settings.tablePrefix, now: () => now, logger: { error: (m) => expect.fail(m) } });
    const scrape = async () => {
      const res = await dashboard.fetch(new Request('http://localhost/metrics'));
      expect(res.status).to.equal(200);
      return res.text();
    };
    const first = await scrape();
    expect(first).to.match(/^bgtasks_queue_tasks\{queue="mail",status="READY"\} 2$/m);
    expect(first).to.match(/^bgtasks_queue_tasks\{queue="",status="READY"\} 1$/m);
    expect(first).to.match(/^bgtasks_queue_due_tasks\{queue="mail"\} 2$/m);
    // A task enqueued now is not seen until the cached answer is 5 s old: scrapes cost no query.
    await seed(db, [newTask({ runAt: T0 - 100, queue: 'mail' })]);
    now = T0 + 4_000;
    expect(await scrape()).to.match(/^bgtasks_queue_tasks\{queue="mail",status="READY"\} 2$/m);
    // Past the period the last answer is served at once while the next one is read.
    now = T0 + 5_000;
    expect(await scrape()).to.match(/^bgtasks_queue_tasks\{queue="mail",status="READY"\} 2$/m);
    await waitUntil(async () => /^bgtasks_queue_tasks\{queue="mail",status="READY"\} 3$/m.test(await scrape()), 'the next answer');
  });

  it('migration 006 fills last_error_class from stored histories (skipping unreadable ones), and rolls back and applies again', async () => {
    const ctx = { prefix: db.settings.tablePrefix, dialect: db.store.dialect };
    const { tasks, completed } = db.store.tables;
    const [a, b, c] = await seed(db, [newTask(), newTask(), newTask()]);
    await m006.down(db.store.knex, ctx);
    try {
      expect(Object.keys(await db.store.knex(tasks).columnInfo())).to.not.include('last_error_class');
      const history = (cls: string) => JSON.stringify([{ class: 'Error', message: 'first', stack: '', attempt: 1, at: T0, workerId: null }, { class: cls, message: 'last', stack: '', attempt: 2, at: T0, workerId: null }]);
      await db.store.knex(tasks).where('id', a).update({ errors: history('RangeError') });
      await db.store.knex(tasks).where('id', b).update({ errors: 'not json {' });
      await db.store.knex(completed).insert({ task_id: '900000001', name: 'x', args: '[]', hash: 'h', run_at: T0, scheduled_at: T0, enqueued_at: T0, finished_at: T0, failed_at: T0, errors: history('TypeError') });
    } finally {
      await m006.up(db.store.knex, ctx);
    }
    const cls = async (table: string, key: string, id: string) => ((await db.store.knex(table).where(key, id).first('last_error_class')) as { last_error_class: unknown }).last_error_class;
    expect(await cls(tasks, 'id', a!)).to.equal('RangeError');
    expect(await cls(tasks, 'id', b!)).to.equal(null);
    expect(await cls(tasks, 'id', c!)).to.equal(null);
    expect(await cls(completed, 'task_id', '900000001')).to.equal('TypeError');
  });
});

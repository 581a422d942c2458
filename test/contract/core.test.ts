/**
 * The core contract (issue 2) on every database: enqueue, claim order, execution, settlement,
 * failures and retries, queues, unknown names, batch draining and the schema check.
 */
import { expect } from 'chai';
import { background, schedule, PermanentTaskError } from '../../core/index.js';
import { ManualClock } from '../../core/base/clock.js';
import { setClock, resetClock } from '../../core/base/clock.js';
import { Worker, type WorkerOptions } from '../../core/worker/worker.js';
import { contract, type TestDatabase } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { NotMigratedError } from '../../core/errors.js';
import { ensureMigrated } from '../../core/store/migrate.js';
import { Store } from '../../core/store/store.js';
import { plainTask } from '../../core/store/rows.js';

const ran: Array<{ name: string; args: unknown[] }> = [];

const add = background({ name: 'core.add' }, async function add(a: number, b: number) {
  ran.push({ name: 'core.add', args: [a, b] });
  return a + b;
});
const note = background({ name: 'core.note', queue: 'notes' }, function note(text: string) {
  ran.push({ name: 'core.note', args: [text] });
});
const flaky = background({ name: 'core.flaky', maxAttempts: 3 }, function flaky(tag: string) {
  ran.push({ name: 'core.flaky', args: [tag] });
  throw new Error(`boom ${tag}`, { cause: new TypeError('inner cause') });
});
const fatal = background({ name: 'core.fatal' }, function fatal() {
  throw new PermanentTaskError('not recoverable');
});
const later = background({ name: 'core.later', schedule: 60 }, function later() {
  return 'later';
});

async function drain(db: TestDatabase, clock: ManualClock, extra: WorkerOptions = {}) {
  const log = recordingLogger();
  const summary = await Worker.drain({ clock, sleep: 0.01, logger: log, ...extra }, db.settings);
  return { summary, log };
}

contract('core: enqueue and run', (db) => {
  const clock = new ManualClock(Date.UTC(2030, 0, 1, 12));
  beforeEach(async () => {
    await db.reset();
    ran.length = 0;
    clock.set(Date.UTC(2030, 0, 1, 12));
    setClock(clock);
  });
  afterEach(() => resetClock());

  it('stores a call as canonical JSON args with a sha1 hash and returns a TaskRef', async () => {
    const ref = await add(1, 2);
    expect(ref).to.deep.include({ name: 'core.add', queue: null, outcome: 'created' });
    expect(ref.id).to.be.a('string');
    expect(ref.runAt.getTime()).to.equal(clock.now());
    const row = await db.store.findPending(ref.id);
    expect(row!.args).to.equal('[1,2]');
    expect(row!.hash).to.match(/^[0-9a-f]{40}$/);
    expect(row!.attempts).to.equal(0);
    expect(row!.lockedBy).to.equal(null);
  });

  it('sorts object keys so equal calls have equal hashes', async () => {
    const n = background({ name: 'core.obj' }, function obj(_o: { a: number; b: number }) {});
    const r1 = await n({ a: 1, b: 2 });
    const r2 = await n({ b: 2, a: 1 });
    const [t1, t2] = [await db.store.findPending(r1.id), await db.store.findPending(r2.id)];
    expect(t1!.args).to.equal('[{"a":1,"b":2}]');
    expect(t1!.hash).to.equal(t2!.hash);
  });

  it('rejects arguments that are not JSON and stores nothing', async () => {
    const n = background({ name: 'core.any' }, function any(_x: unknown) {});
    await expectReject(() => n({ user: { createdAt: new Date() } }), /argument 1 \.user\.createdAt: Date is not JSON — pass an ISO string/);
    await expectReject(() => n(10n), /argument 1: bigint is not JSON/);
    await expectReject(() => n(NaN), /argument 1: NaN is not JSON/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expectReject(() => n(cyclic), /argument 1 \.self: a cycle is not JSON/);
    const [{ n: count }] = (await db.store.knex(db.store.tables.tasks).count({ n: '*' })) as Array<{ n: unknown }>;
    expect(Number(count)).to.equal(0);
  });

  it('uses the definition schedule for the run time and schedule(0) for now', async () => {
    const a = await later();
    const b = await later(schedule(0));
    const c = await later(schedule(new Date(Date.UTC(2031, 5, 1))));
    expect(a.runAt.getTime()).to.equal(clock.now() + 60_000);
    expect(b.runAt.getTime()).to.equal(clock.now());
    expect(c.runAt.toISOString()).to.equal('2031-06-01T00:00:00.000Z');
  });

  it('runs a due task, moves it to the completed table with its return value, attempts 1', async () => {
    const ref = await add(2, 3);
    const { summary, log } = await drain(db, clock);
    expect(summary).to.include({ succeeded: 1, failed: 0, reason: 'batch' });
    expect(await db.store.findPending(ref.id)).to.equal(null);
    const done = await db.store.findCompleted(ref.id);
    expect(done).to.include({ name: 'core.add', attempts: 1, returnValue: '5', failedAt: null, startedAt: clock.now() });
    expect(done!.workerId).to.be.a('string');
    // One info line per task, at its end; its start is a debug line.
    expect(log.find('debug', /task started/)).to.have.length(1);
    expect(log.lines.filter((l) => l.level === 'info' && l.fields.id === ref.id).map((l) => l.msg)).to.deep.equal(['task succeeded']);
    const finished = log.find('info', /task succeeded/)[0]!;
    expect(finished.fields).to.include({ id: ref.id, name: 'core.add', outcome: 'succeeded' });
    expect(finished.fields.duration_ms).to.be.a('number');
  });

  it('does not run tasks that are not due yet', async () => {
    await later();
    const { summary } = await drain(db, clock);
    expect(summary.ran).to.equal(0);
    clock.advance(60);
    expect((await drain(db, clock)).summary.succeeded).to.equal(1);
  });

  it('claims by priority (DESC by default), then run time, then id', async () => {
    await note('low', schedule(0, { priority: -1 }));
    await note('high', schedule(0, { priority: 10 }));
    await note('first-zero', schedule(0, { priority: 0 }));
    clock.advance(1);
    await note('second-zero');
    await note('early-zero', schedule(new Date(clock.now() - 5000)));
    await drain(db, clock);
    expect(ran.map((r) => r.args[0])).to.deep.equal(['high', 'early-zero', 'first-zero', 'second-zero', 'low']);
  });

  it('claims lower priorities first with priorityOrdering ASC', async () => {
    await note('a', schedule(0, { priority: 5 }));
    await note('b', schedule(0, { priority: -5 }));
    await note('c', schedule(0, { priority: 0 }));
    const summary = await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, { ...db.settings, priorityOrdering: 'ASC' });
    expect(summary.succeeded).to.equal(3);
    expect(ran.map((r) => r.args[0])).to.deep.equal(['b', 'c', 'a']);
  });

  it('records a failure with class, message, stack and cause, and retries after attempts**4+5 s', async () => {
    const ref = await flaky('x');
    const { summary } = await drain(db, clock);
    expect(summary).to.include({ rescheduled: 1, failed: 0 });
    const row = (await db.store.findPending(ref.id))!;
    expect(row.attempts).to.equal(1);
    expect(row.runAt).to.equal(clock.now() + 6_000);
    expect(row.lockedBy).to.equal(null);
    expect(row.claimToken).to.equal(null);
    expect(row.lastError).to.match(/^Error: boom x/);
    expect(row.lastError).to.match(/Caused by: TypeError: inner cause/);
    expect(row.errors).to.have.length(1);
    expect(row.errors[0]).to.include({ class: 'Error', message: 'boom x', attempt: 1 });
    clock.advance(6);
    await drain(db, clock);
    const second = (await db.store.findPending(ref.id))!;
    expect(second.attempts).to.equal(2);
    expect(second.runAt).to.equal(clock.now() + 21_000);
  });

  it('fails for good when attempts reach maxAttempts, keeping the error', async () => {
    const ref = await flaky('y');
    for (const wait of [0, 6, 21]) {
      clock.advance(wait);
      await drain(db, clock);
    }
    expect(await db.store.findPending(ref.id)).to.equal(null);
    const done = (await db.store.findCompleted(ref.id))!;
    expect(done.failedAt).to.equal(clock.now());
    expect(done.attempts).to.equal(3);
    expect(done.lastError).to.match(/boom y/);
    expect(done.errors.map((e) => e.attempt)).to.deep.equal([1, 2, 3]);
  });

  it('fails at once on PermanentTaskError', async () => {
    const ref = await fatal();
    const { summary } = await drain(db, clock);
    expect(summary.failed).to.equal(1);
    const done = (await db.store.findCompleted(ref.id))!;
    expect(done.attempts).to.equal(1);
    expect(done.errors[0]!.class).to.equal('PermanentTaskError');
  });

  it('takes only the named queues with --queue, and every queue without it', async () => {
    await note('queued');
    await add(1, 1);
    const { summary } = await drain(db, clock, { queues: ['notes'] });
    expect(summary.succeeded).to.equal(1);
    expect(ran.map((r) => r.name)).to.deep.equal(['core.note']);
    const rest = await drain(db, clock);
    expect(rest.summary.succeeded).to.equal(1);
  });

  it('excludes queues with excludeQueues but still takes tasks without a queue', async () => {
    await note('skipped');
    await add(1, 1);
    await drain(db, clock, { excludeQueues: ['notes'] });
    expect(ran.map((r) => r.name)).to.deep.equal(['core.add']);
  });

  it('leaves tasks whose name it has not registered, and warns with name and count', async () => {
    await db.store.insertTasks([plainTask({ name: 'core.unknown', args: '[]', hash: 'x'.repeat(40), runAt: clock.now(), enqueuedAt: clock.now() })]);
    const { summary, log } = await drain(db, clock);
    expect(summary.ran).to.equal(0);
    const warn = log.find('warn', /no loaded task file registers/);
    expect(warn).to.have.length(1);
    expect(warn[0]!.fields).to.include({ name: 'core.unknown', count: 1 });
    const [{ n }] = (await db.store.knex(db.store.tables.tasks).count({ n: '*' })) as Array<{ n: unknown }>;
    expect(Number(n)).to.equal(1);
  });

  it('refuses to start on a database that is not migrated, saying what to run', async () => {
    const other = new Store(db.store.conn, 'nothere_');
    try {
      await ensureMigrated(other.conn, 'nothere_');
      expect.fail('expected NotMigratedError');
    } catch (err) {
      expect(err).to.be.instanceOf(NotMigratedError);
      expect((err as Error).message).to.match(/bgtasks migrate/);
    }
  });
});

async function expectReject(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected a rejection matching ${pattern}`);
}

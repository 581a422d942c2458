/**
 * Behaviours the code has and no other test covered: `.now()`, the maxArgsBytes limit, the
 * registry's name rules, queue filters on a worker, atomic rescheduleExisting, what a repeating
 * task's successor copies, a call-site maxRunTime, and a named connection on each database.
 */
import { expect } from 'chai';
import path from 'node:path';
import { background, configure, getResult, schedule, Repeat, ValidationError } from '../../core/index.js';
import { getRegistered, unregister } from '../../core/definition/registry.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, settingsFor } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const HOUR = 3_600_000;
const DEFAULT_MAX_ARGS_BYTES = 1024 * 1024;
const ran: string[] = [];

class InlineBoom extends Error {}

const inlineAdd = background({ name: 'gaps.inlineAdd' }, function inlineAdd(a: number, b: number) {
  ran.push(`inlineAdd:${a}+${b}`);
  return a + b;
});
const inlineUpper = background({ name: 'gaps.inlineUpper' }, async function inlineUpper(s: string) {
  ran.push(`inlineUpper:${s}`);
  return s.toUpperCase();
});
const inlineThrows = background({ name: 'gaps.inlineThrows' }, function inlineThrows(tag: string): never {
  ran.push(`inlineThrows:${tag}`);
  throw new InlineBoom(`sync ${tag}`);
});
const inlineRejects = background({ name: 'gaps.inlineRejects' }, async function inlineRejects(tag: string): Promise<never> {
  ran.push(`inlineRejects:${tag}`);
  throw new InlineBoom(`async ${tag}`);
});
const sized = background({ name: 'gaps.sized' }, function sized(_text: string) {});
const queued = background({ name: 'gaps.queued' }, function queued(tag: string) {
  ran.push(tag);
});
const resched = background({ name: 'gaps.resched' }, function resched(_tag: string) {});
const repeating = background({ name: 'gaps.repeating' }, function repeating(tag: string) {
  return tag;
});
const repeatingFails = background({ name: 'gaps.repeatingFails' }, function repeatingFails(tag: string) {
  throw new Error(`fails ${tag}`);
});
/** Ends on its own after 600 ms (well within its own 30 s limit), or rejects when its signal aborts. */
const limited = background({ name: 'gaps.limited', context: true, maxRunTime: 30 }, async function limited(ctx) {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, 600);
    ctx.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      },
      { once: true },
    );
  });
  return 'finished';
});
const viaName = background({ name: 'gaps.viaName' }, function viaName(n: number) {
  return n * 3;
});

const T0 = Date.UTC(2032, 3, 1, 9);

contract('API behaviours without a test elsewhere', (db) => {
  const { clock, drain } = manualClockSuite(db, T0, () => {
    ran.length = 0;
  });
  const count = async (table: string) => Number(((await db.store.knex(table).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
  const pendingRows = async () =>
    (await db.store.knex(db.store.tables.tasks).select('*').orderBy('id')) as Array<Record<string, unknown>>;

  describe('.now()', () => {
    it('runs the function inline and returns its result (a promise for an async function), storing nothing', async () => {
      const sum = inlineAdd.now(2, 3);
      expect(sum).to.equal(5);
      const upper = inlineUpper.now('abc');
      expect(upper).to.be.instanceOf(Promise);
      expect(await upper).to.equal('ABC');
      expect(ran).to.deep.equal(['inlineAdd:2+3', 'inlineUpper:abc']);
      expect(await count(db.store.tables.tasks)).to.equal(0);
      expect(await count(db.store.tables.completed)).to.equal(0);
    });

    it('lets an error thrown (or rejected) by the function propagate, storing nothing', async () => {
      expect(() => inlineThrows.now('a')).to.throw(InlineBoom, 'sync a');
      let rejected: unknown;
      await inlineRejects.now('b').catch((err: unknown) => (rejected = err));
      expect(rejected).to.be.instanceOf(InlineBoom);
      expect((rejected as Error).message).to.equal('async b');
      expect(ran).to.deep.equal(['inlineThrows:a', 'inlineRejects:b']);
      expect(await count(db.store.tables.tasks)).to.equal(0);
      expect(await count(db.store.tables.completed)).to.equal(0);
    });
  });

  describe('maxArgsBytes', () => {
    afterEach(() => configure({ maxArgsBytes: DEFAULT_MAX_ARGS_BYTES }));

    it('refuses arguments over maxArgsBytes with a ValidationError naming their size and the setting, storing nothing', async () => {
      configure({ maxArgsBytes: 64 });
      // ["x…x"] with 61 x: 65 bytes of JSON.
      await expectReject(
        () => sized('x'.repeat(61)),
        ValidationError,
        /^gaps\.sized: arguments are 65 bytes of JSON — expected at most 64 \(the maxArgsBytes setting\)/,
      );
      expect(await count(db.store.tables.tasks)).to.equal(0);
      expect(await count(db.store.tables.completed)).to.equal(0);
    });

    it('counts UTF-8 bytes, not characters, and accepts a call of exactly maxArgsBytes', async () => {
      configure({ maxArgsBytes: 64 });
      // ["é…é"]: 4 + 2 bytes per é. 31 of them are 35 characters but 66 bytes.
      await expectReject(() => sized('é'.repeat(31)), ValidationError, /arguments are 66 bytes of JSON — expected at most 64/);
      const atLimit = await sized('é'.repeat(30));
      const ascii = await sized('x'.repeat(60));
      expect([atLimit.outcome, ascii.outcome]).to.deep.equal(['created', 'created']);
      const rows = await pendingRows();
      expect(rows.map((r) => Buffer.byteLength(String(r.args)))).to.deep.equal([64, 64]);
    });
  });

  describe('queue filters', () => {
    const enqueueFourQueues = async () => {
      await queued('in-a', schedule(0, { queue: 'a' }));
      await queued('in-b', schedule(0, { queue: 'b' }));
      await queued('in-c', schedule(0, { queue: 'c' }));
      await queued('no-queue');
    };
    const pendingQueues = async () => (await pendingRows()).map((r) => r.queue);

    it("a worker with queues ['a', 'b'] runs those queues' tasks and leaves queue c and no queue pending", async () => {
      await enqueueFourQueues();
      const summary = await drain({ queues: ['a', 'b'] });
      expect(summary.succeeded).to.equal(2);
      expect([...ran].sort()).to.deep.equal(['in-a', 'in-b']);
      expect(await pendingQueues()).to.deep.equal(['c', null]);
    });

    it("a worker with excludeQueues ['a', 'b'] runs queue c and no queue, and leaves queues a and b pending", async () => {
      await enqueueFourQueues();
      const summary = await drain({ excludeQueues: ['a', 'b'] });
      expect(summary.succeeded).to.equal(2);
      expect([...ran].sort()).to.deep.equal(['in-c', 'no-queue']);
      expect(await pendingQueues()).to.deep.equal(['a', 'b']);
    });
  });

  it('is atomic: 20 concurrent rescheduleExisting calls of one call leave exactly one row, from one of them (5 rounds)', async () => {
    // A race shows only sometimes: five rounds, each a fresh call (its own hash), make it likely.
    for (const round of [1, 2, 3, 4, 5]) {
      const tag = `race-${round}`;
      const refs = await Promise.all(
        Array.from({ length: 20 }, (_, i) => resched(tag, schedule(10 + i, { action: 'rescheduleExisting', priority: i }))),
      );
      const rows = (await pendingRows()).filter((r) => r.args === JSON.stringify([tag]));
      expect(rows, tag).to.have.length(1);
      expect(refs.filter((r) => r.outcome === 'created'), tag).to.have.length(1);
      expect(refs.filter((r) => r.outcome === 'rescheduled'), tag).to.have.length(19);
      expect(new Set(refs.map((r) => r.id)), tag).to.deep.equal(new Set([String(rows[0]!.id)]));
      // The row holds the run time and the priority of one and the same call (the last to commit).
      const i = Number(rows[0]!.priority);
      expect(i, tag).to.be.within(0, 19);
      expect(Number(rows[0]!.run_at), tag).to.equal(T0 + (10 + i) * 1000);
    }
    expect(await pendingRows()).to.have.length(5);
  });

  describe("a repeating task's successor", () => {
    const until = new Date(T0 + 10 * HOUR);
    const callOptions = {
      queue: 'gaps-q',
      priority: 7,
      verboseName: 'Hourly report',
      creator: { type: 'auth.user', id: 42 },
      repeat: Repeat.HOURLY,
      repeatUntil: until,
    };
    const expected = {
      queue: 'gaps-q',
      priority: 7,
      verboseName: 'Hourly report',
      creatorType: 'auth.user',
      creatorId: '42',
      repeatEvery: 3600,
      repeatUntil: until.getTime(),
      runAt: T0 + HOUR,
      attempts: 0,
    };
    const successor = async (originalId: string) => {
      const rows = await pendingRows();
      expect(rows).to.have.length(1);
      const next = (await db.store.findPending(String(rows[0]!.id)))!;
      expect(next.id).not.to.equal(originalId);
      return next;
    };

    it('copies queue, priority, verbose name, creator, repeat and repeatUntil from the original', async () => {
      const first = await repeating('r', schedule(0, callOptions));
      const summary = await drain();
      expect(summary.succeeded).to.equal(1);
      expect(await successor(first.id)).to.include({ name: 'gaps.repeating', args: '["r"]', ...expected });
    });

    it('copies them too when the original failed for good', async () => {
      const first = await repeatingFails('f', schedule(0, { ...callOptions, maxAttempts: 1 }));
      const summary = await drain();
      expect(summary.failed).to.equal(1);
      expect(await successor(first.id)).to.include({ name: 'gaps.repeatingFails', args: '["f"]', ...expected });
    });
  });

  it("a call-site maxRunTime overrides the definition's: the task fails with a TaskTimeoutError although its definition allows longer", async () => {
    const short = await limited(schedule(0, { maxRunTime: 0.2 }));
    const control = await limited();
    const summary = await drain();
    expect(summary).to.include({ rescheduled: 1, succeeded: 1 });
    const r = await getResult(short.id);
    expect(r.status).to.equal('READY');
    expect(r.attempts).to.equal(1);
    expect(r.errors).to.have.length(1);
    expect(r.errors[0]!.exceptionClass).to.equal('TaskTimeoutError');
    expect(r.errors[0]!.message).to.match(/ran longer than its maxRunTime of 0\.2 s/);
    // The same task without the call-site limit runs to its end under the definition's 30 s.
    expect((await getResult(control.id)).returnValue).to.equal('finished');
  });

  it("stores a task through a named connection to this database, runs it with a worker on that name, and reads the result back", async () => {
    // The main database is elsewhere (an empty, unmigrated SQLite file): only the named
    // connection leads to this database's tables.
    const elsewhereUrl = `sqlite:${path.join(db.dir, 'elsewhere.sqlite3')}`;
    const elsewhere = await settingsFor(elsewhereUrl, db.settings.tablePrefix, db.dir);
    configure({ database: elsewhereUrl, connections: { gaps: db.url } });
    try {
      const ref = await viaName(5, schedule(0, { connection: 'gaps' }));
      expect(await db.store.findPending(ref.id)).to.include({ name: 'gaps.viaName', args: '[5]' });
      const settings = { ...db.settings, database: elsewhere.database, connections: { gaps: db.settings.database } };
      const summary = await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), connection: 'gaps' }, settings);
      expect(summary.succeeded).to.equal(1);
      const result = await getResult(ref.id, { connection: 'gaps' });
      expect(result).to.include({ status: 'SUCCESSFUL', name: 'gaps.viaName' });
      expect(result.returnValue).to.equal(15);
      expect((await ref.refresh()).returnValue).to.equal(15);
    } finally {
      configure({ database: db.url, connections: {} });
    }
  });
});

describe('registry name rules', () => {
  const names = ['gaps.taken', 'gaps.same', 'gaps.anonNamed'];
  after(() => names.forEach((n) => unregister(n)));

  it('refuses a different function under a taken name with a ValidationError naming the name and both places', () => {
    background({ name: 'gaps.taken' }, function firstOwner() {
      return 1;
    });
    let error: unknown;
    try {
      background({ name: 'gaps.taken' }, function secondOwner() {
        return 2;
      });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ValidationError);
    const message = (error as Error).message;
    expect(message).to.match(/^Task name "gaps\.taken" is already registered by function firstOwner \(.*\); cannot register function secondOwner \(.*\) under the same name/);
    expect(message.match(/registry\.test\.ts:\d+:\d+/g)).to.have.length(2);
    // The first registration stands.
    expect(getRegistered('gaps.taken')!.fn.name).to.equal('firstOwner');
  });

  it('accepts a second function with identical source text under the same name (the same file imported twice)', () => {
    const fromFirstImport = function same(n: number) {
      return n + 1;
    };
    const fromSecondImport = function same(n: number) {
      return n + 1;
    };
    expect(fromFirstImport).not.to.equal(fromSecondImport);
    expect(fromFirstImport.toString()).to.equal(fromSecondImport.toString());
    background({ name: 'gaps.same' }, fromFirstImport);
    const again = background({ name: 'gaps.same' }, fromSecondImport);
    expect(again.name).to.equal('gaps.same');
    expect(getRegistered('gaps.same')!.fn).to.equal(fromSecondImport);
  });

  it('refuses an anonymous function without a name option, and accepts it with one', () => {
    expect(() => background(() => 1)).to.throw(ValidationError, /an anonymous function needs a name — pass \{ name: "…" \}/);
    expect(() =>
      background({ queue: 'q' }, function () {
        return 1;
      }),
    ).to.throw(ValidationError, /an anonymous function needs a name/);
    expect(background({ name: 'gaps.anonNamed' }, () => 1).name).to.equal('gaps.anonNamed');
  });
});

async function expectReject(fn: () => Promise<unknown>, cls: new (...a: any[]) => Error, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(cls);
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected ${cls.name} matching ${pattern}`);
}

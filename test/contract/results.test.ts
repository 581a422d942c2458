/**
 * Results, context, validation, transactional and bulk enqueue, expiry, bounded queues and named
 * connections (issue 6) on every database.
 */
import { expect } from 'chai';
import { inspect } from 'node:util';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import {
  background,
  schedule,
  getResult,
  waitFor,
  events,
  configure,
  QueueFullError,
  TaskNotFinishedError,
  TaskFailedError,
  TaskNotFoundError,
  ValidationError,
  WaitTimeoutError,
  type StandardSchemaV1,
} from '../../core/index.js';
import { Worker } from '../../core/worker/worker.js';
import { runMigrations } from '../../core/store/migrate.js';
import { storeFor } from '../../core/store/open.js';
import { contract, settingsFor } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const seen: Array<Record<string, unknown>> = [];

const echo = background({ name: 'res.echo', queue: 'echo' }, function echo(v: unknown) {
  return v;
});
const nothing = background({ name: 'res.nothing' }, function nothing() {});
const returnsNull = background({ name: 'res.null' }, function returnsNull() {
  return null;
});
const returnsRecord = background({ name: 'res.record' }, function returnsRecord() {
  return { userId: 42, sentTo: 'a@b.c', meta: { z: 1, a: 2 } };
});
const returnsDate = background({ name: 'res.date' }, function returnsDate() {
  return new Date(0) as unknown as string;
});
const withCtx = background({ name: 'res.ctx', context: true, queue: 'ctxq' }, function withCtx(ctx, tag: string) {
  ctx.log.info('inside the task', { tag });
  seen.push({ id: ctx.id, attempt: ctx.attempt, queue: ctx.queue, name: ctx.name, aborted: ctx.signal.aborted });
  return tag;
});
const checkedByFn = background(
  {
    name: 'res.checkedFn',
    validate: ([n]: [number]) => {
      if (n < 0) throw new Error('n must be >= 0');
    },
  },
  function checkedFn(n: number) {
    return n;
  },
);
/** A minimal Standard Schema (what zod or valibot provide) for a tuple [email: string]. */
const emailSchema: StandardSchemaV1<[string]> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (value) =>
      Array.isArray(value) && typeof value[0] === 'string' && value[0].includes('@')
        ? { value }
        : { issues: [{ message: 'Invalid email', path: [0] }] },
  },
};
const checkedBySchema = background({ name: 'res.checkedSchema', validate: emailSchema }, function checkedSchema(email: string) {
  return email;
});
const expiring = background({ name: 'res.expiring', expiresAfter: 60 }, function expiring() {
  seen.push({ ran: 'expiring' });
});
const bounded = background({ name: 'res.bounded', queue: 'small' }, function bounded(n: number) {
  return n;
});
const reports = background({ name: 'res.reports', connection: 'reports' }, function reports(n: number) {
  return n * 10;
});

const T0 = Date.UTC(2031, 0, 1);

contract(
  'results, validation and enqueue variants',
  (db) => {
    const { clock, drain } = manualClockSuite(db, T0, () => {
      seen.length = 0;
    });
    const pending = async () => Number(((await db.store.knex(db.store.tables.tasks).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);

    describe('getResult', () => {
      it('reads a task through its life: READY, then SUCCESSFUL with every field, by the same id', async () => {
        const ref = await echo({ a: [1, 'x'] }, schedule(0, { priority: 3, verboseName: 'Echo' }));
        const ready = await getResult(ref.id);
        expect(ready).to.include({ id: ref.id, name: 'res.echo', status: 'READY', queue: 'echo', priority: 3, attempts: 0, isFinished: false, workerId: null });
        expect(ready.args).to.deep.equal([{ a: [1, 'x'] }]);
        expect(ready.enqueuedAt.getTime()).to.equal(T0);
        expect(() => ready.returnValue).to.throw(TaskNotFinishedError, /task has not finished yet/);
        clock.advance(2);
        await drain();
        const done = await ref.refresh();
        expect(done).to.include({ status: 'SUCCESSFUL', attempts: 1, isFinished: true, hasError: false });
        expect(done.returnValue).to.deep.equal({ a: [1, 'x'] });
        expect(done.startedAt!.getTime()).to.equal(T0 + 2000);
        expect(done.finishedAt!.getTime()).to.equal(T0 + 2000);
        expect(done.workerId).to.be.a('string');
        expect(JSON.parse(JSON.stringify(done))).to.include({ status: 'SUCCESSFUL', id: ref.id });
      });

      it('shows RUNNING under a live lease, with the worker', async () => {
        const ref = await echo(1);
        await db.store.claim({ names: ['res.echo'], queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w-1', nowMs: T0, leaseMs: 60_000, limit: 1 });
        const r = await getResult(ref.id);
        expect(r).to.include({ status: 'RUNNING', workerId: 'w-1', attempts: 1 });
        clock.advance(61);
        expect((await getResult(ref.id)).status).to.equal('READY');
      });

      it('shows a TaskRef as a TaskRef in console.log, with its fields and without internals', async () => {
        const ref = await returnsRecord();
        const shown = inspect(ref);
        expect(shown).to.match(/^TaskRef \{/);
        expect(shown).to.include(`id: '${ref.id}'`).and.include("name: 'res.record'").and.include("outcome: 'created'");
        expect(shown).not.to.match(/connection|Symbol/);
      });

      it('gives back a returned object with its keys in their own order', async () => {
        const ref = await returnsRecord();
        await drain();
        const value = (await getResult<{ userId: number; sentTo: string; meta: Record<string, number> }>(ref.id)).returnValue;
        expect(value).to.deep.equal({ userId: 42, sentTo: 'a@b.c', meta: { z: 1, a: 2 } });
        expect(Object.keys(value)).to.deep.equal(['userId', 'sentTo', 'meta']);
        expect(Object.keys(value.meta)).to.deep.equal(['z', 'a']);
      });

      it('keeps undefined and null returns apart, and throws "task failed" on a failed task', async () => {
        const a = await nothing();
        const b = await returnsNull();
        const c = await returnsDate();
        await drain();
        expect((await getResult(a.id)).returnValue).to.equal(undefined);
        expect((await getResult(b.id)).returnValue).to.equal(null);
        const failed = await getResult(c.id);
        expect(failed.status).to.equal('FAILED');
        expect(() => failed.returnValue).to.throw(TaskFailedError, /^Task res\.\w+ #\d+: task failed \(last error: ValidationError: return value of task .*Date is not JSON.*\) — see its errors$/);
      });

      it('fails for good (one attempt) a task whose return value is not JSON, naming the task', async () => {
        const c = await returnsDate();
        await drain();
        const r = await getResult(c.id);
        expect(r.attempts).to.equal(1);
        expect(r.errors[0]!.message).to.match(new RegExp(`return value of task res\\.date #${c.id}: Date is not JSON`));
      });

      it('raises a specific error for an unknown or malformed id', async () => {
        await expectReject(() => getResult('424242'), TaskNotFoundError, /No task with id 424242/);
        await expectReject(() => getResult('x1'), TaskNotFoundError, /Invalid task id "x1"/);
        await expectReject(() => getResult(-3), TaskNotFoundError, /Invalid task id/);
      });

      it('takes an id beyond the databases’ id range for a malformed one, alike on every database (PostgreSQL threw "out of range for type bigint")', async () => {
        await expectReject(() => getResult('9223372036854775807'), TaskNotFoundError, /^No task with id 9223372036854775807 /);
        for (const id of ['9223372036854775808', '9999999999999999999']) {
          await expectReject(() => getResult(id), TaskNotFoundError, new RegExp(`^Invalid task id "${id}" — expected a positive integer id such as "42" \\(at most 9223372036854775807\\)$`));
        }
      });

      it('refuses unknown and mistyped options of getResult and waitFor, naming them (a misspelt timeout waited the default 30 s)', async () => {
        const ref = await echo('o');
        await expectReject(() => getResult(ref.id, { conection: 'reports' } as never), ValidationError, /^Unknown option "conection" in getResult\(\) options — expected: connection$/);
        await expectReject(() => waitFor(ref, { timout: 5 } as never), ValidationError, /^Unknown option "timout" in waitFor\(\) options — expected one of: timeout, interval, timeoutMs, intervalMs, connection$/);
        await expectReject(() => waitFor(ref, { timeout: '0.5' } as never), ValidationError, /^Invalid timeout in waitFor\(\) options: "0.5" — expected a finite number of seconds > 0$/);
        await expectReject(() => waitFor(ref, { interval: 0 }), ValidationError, /^Invalid interval in waitFor\(\) options: 0 — /);
        await expectReject(() => waitFor(ref, { timeoutMs: NaN }), ValidationError, /^Invalid timeoutMs in waitFor\(\) options: NaN — expected a finite number of milliseconds > 0$/);
        await expectReject(() => waitFor(ref, { connection: 5 } as never), ValidationError, /^Invalid connection in waitFor\(\) options: 5 — /);
      });

      it('waitFor resolves when the task finishes and times out with a clear error otherwise', async () => {
        const ref = await echo('w');
        await expectReject(() => waitFor(ref, { timeout: 0.05, interval: 0.01 }), WaitTimeoutError, /had not finished after 0.05 s \(status READY\)/);
        const w = await new Worker({ clock, sleep: 0.01, logger: recordingLogger() }).start(db.settings);
        try {
          expect((await waitFor(ref, { timeout: 5, interval: 0.01 })).returnValue).to.equal('w');
        } finally {
          await w.stop(0);
        }
      });
    });

    it('gives a task that asks for it a context: id, attempt, queue, name, signal and a tagged log', async () => {
      const ref = await withCtx('t');
      const log = recordingLogger();
      await drain({ logger: log });
      expect(seen).to.deep.equal([{ id: ref.id, attempt: 1, queue: 'ctxq', name: 'res.ctx', aborted: false }]);
      const line = log.find('info', /inside the task/)[0]!;
      expect(line.fields).to.include({ id: ref.id, name: 'res.ctx', tag: 't' });
    });

    describe('validate', () => {
      it('says where a misplaced or second schedule() goes, storing nothing (it said "symbol is not JSON")', async () => {
        await expectReject(() => (echo as (...a: unknown[]) => Promise<unknown>)(schedule(0), 1), ValidationError, /^res\.echo: argument 1 is a schedule\(\) — schedule\(\) goes last, once: /);
        await expectReject(() => (echo as (...a: unknown[]) => Promise<unknown>)(1, schedule(0), schedule(0)), ValidationError, /^res\.echo: argument 2 is a schedule\(\) — schedule\(\) goes last, once: /);
        await expectReject(() => echo.bulk([[1], [schedule(0)]] as never), ValidationError, /^res\.echo\.bulk\(\): call 2: argument 1 is a schedule\(\) — bulk\(\) takes the call-site options as its second parameter/);
        expect(await pending()).to.equal(0);
      });

      it('rejects bad arguments at enqueue with the validator’s message, storing nothing', async () => {
        await expectReject(() => checkedByFn(-1), ValidationError, /res\.checkedFn: invalid arguments — n must be >= 0/);
        await expectReject(() => checkedBySchema('nope'), ValidationError, /res\.checkedSchema: invalid arguments — argument 1: Invalid email/);
        expect(await pending()).to.equal(0);
        expect((await checkedBySchema('a@b.c')).outcome).to.equal('created');
      });

      it('fails for good a task whose stored arguments no longer validate', async () => {
        const ref = await checkedBySchema('ok@example.com');
        await db.store.knex(db.store.tables.tasks).where('id', ref.id).update({ args: '["written by older code"]' });
        await drain();
        const r = await getResult(ref.id);
        expect(r.status).to.equal('FAILED');
        expect(r.attempts).to.equal(1);
        expect(r.errors[0]!.exceptionClass).to.equal('PermanentTaskError');
        expect(r.errors[0]!.message).to.match(/stored arguments are invalid — argument 1: Invalid email/);
      });
    });

    describe('transactional enqueue', () => {
      let appKnex: Knex;
      before(async () => {
        // The application's own knex instance on the same database (a separate pool).
        const s = await settingsFor(db.url, db.settings.tablePrefix, db.dir);
        appKnex = knexFactory({ ...(s.database.config as Knex.Config), pool: { min: 0, max: 2 } });
      });
      after(async () => appKnex.destroy());

      it('writes nothing when the caller’s transaction rolls back, and emits no event', async () => {
        const created: string[] = [];
        const off = events.on('task:created', (e) => void created.push(e.id));
        try {
          await appKnex
            .transaction(async (trx) => {
              await echo('rolled back', schedule(0, { db: trx }));
              throw new Error('app error');
            })
            .catch(() => {});
        } finally {
          off();
        }
        expect(await pending()).to.equal(0);
        expect(created).to.deep.equal([]);
      });

      it('makes the task visible to workers once the caller’s transaction commits, then emits task:created', async () => {
        const created: string[] = [];
        const off = events.on('task:created', (e) => void created.push(e.id));
        let id = '';
        try {
          await appKnex.transaction(async (trx) => {
            id = (await echo('committed', schedule(0, { db: trx }))).id;
            expect(created).to.deep.equal([]);
          });
          await new Promise((r) => setImmediate(r));
        } finally {
          off();
        }
        expect(created).to.deep.equal([id]);
        await drain();
        expect((await getResult(id)).returnValue).to.equal('committed');
      });

      if (db.name === 'sqlite') {
        it('sets its busy timeout on the caller’s SQLite connection before writing (a lock then waits instead of failing)', async () => {
          await appKnex.transaction(async (trx) => {
            await trx.raw('PRAGMA busy_timeout = 0');
            await echo('busy', schedule(0, { db: trx }));
            const rows = (await trx.raw('PRAGMA busy_timeout')) as Array<Record<string, unknown>>;
            expect(Object.values(rows[0]!)).to.deep.equal([15_000]);
          });
          expect(await pending()).to.equal(1);
        });
      }

      it('keeps a dedupe action atomic inside the caller’s transaction', async () => {
        await appKnex.transaction(async (trx) => {
          await echo('once', schedule(0, { db: trx, action: 'checkExisting' }));
          const again = await echo('once', schedule(0, { db: trx, action: 'checkExisting' }));
          expect(again.outcome).to.equal('existing');
        });
        expect(await pending()).to.equal(1);
      });
    });

    describe('bulk', () => {
      it('enqueues 10,000 calls in one call, returning their refs in order', async function () {
        this.timeout(60_000);
        const calls = Array.from({ length: 10_000 }, (_, i) => [i] as [unknown]);
        const refs = await echo.bulk(calls);
        expect(refs).to.have.length(10_000);
        expect(new Set(refs.map((r) => r.id)).size).to.equal(10_000);
        const rows = (await db.store.knex(db.store.tables.tasks).select('id', 'args')) as Array<{ id: unknown; args: string }>;
        expect(rows).to.have.length(10_000);
        const byId = new Map(rows.map((r) => [String(r.id), r.args]));
        for (const i of [0, 1, 4999, 9999]) expect(byId.get(refs[i]!.id)).to.equal(`[${i}]`);
      });

      it('validates its options like schedule() does', async () => {
        await expectReject(() => echo.bulk([[1]], { prority: 1 } as never), ValidationError, /Unknown option "prority"/);
        await expectReject(() => echo.bulk([[1]], { priority: 1.5 }), ValidationError, /Invalid priority/);
        await expectReject(() => echo.bulk([[1]], { when: -5 }), ValidationError, /Invalid when/);
        await expectReject(() => echo.bulk([[1]], { removeExisting: true }), ValidationError, /not supported in bulk/);
        await expectReject(() => echo.bulk([[1]], { db: {} as never }), ValidationError, /^Invalid db in res\.echo\.bulk\(\) options: an object — expected a knex instance or a knex transaction/);
        await expectReject(() => echo.bulk([[1]], { connection: 5 as never }), ValidationError, /^Invalid connection in res\.echo\.bulk\(\) options/);
        expect(await pending()).to.equal(0);
      });

      it('stores the shared options on every row, also when every call is the same', async () => {
        const until = new Date(clock.now() + 86_400_000);
        const opts = { priority: 7, verboseName: 'batch', creator: { type: 'user', id: 9 }, repeat: 3600, repeatUntil: until, repeatOnFailure: false, maxAttempts: 4, when: 30 };
        const refs = [...(await echo.bulk([['a'], ['b'], [{ n: 1 }]], opts)), ...(await echo.bulk([['same'], ['same'], ['same']], opts))];
        const rows = (await db.store.knex(db.store.tables.tasks).whereIn('id', refs.map((r) => r.id)).orderBy('id')) as Array<Record<string, unknown>>;
        expect(rows.map((r) => String(r.args))).to.deep.equal(['["a"]', '["b"]', '[{"n":1}]', '["same"]', '["same"]', '["same"]']);
        expect(new Set(rows.slice(3).map((r) => r.hash)).size).to.equal(1);
        for (const r of rows) {
          expect({
            queue: r.queue,
            priority: Number(r.priority),
            verboseName: r.verbose_name,
            creator: [r.creator_type, r.creator_id],
            repeatEveryMs: Number(r.repeat_every_ms),
            repeatUntil: Number(r.repeat_until),
            repeatOnFailure: Boolean(Number(r.repeat_on_failure) || r.repeat_on_failure === true),
            maxAttempts: Number(r.max_attempts),
            runAt: Number(r.run_at),
            attempts: Number(r.attempts),
          }).to.deep.equal({
            queue: 'echo',
            priority: 7,
            verboseName: 'batch',
            creator: ['user', '9'],
            repeatEveryMs: 3_600_000,
            repeatUntil: until.getTime(),
            repeatOnFailure: false,
            maxAttempts: 4,
            runAt: clock.now() + 30_000,
            attempts: 0,
          });
        }
      });

      it('stores nothing when one call of the batch is invalid', async () => {
        const calls: Array<[unknown]> = [[1], [2], [new Map()], [4]];
        await expectReject(() => echo.bulk(calls), ValidationError, /bulk\(\): call 3: argument 1: Map is not JSON/);
        expect(await pending()).to.equal(0);
      });
    });

    it('fails a task not started within expiresAfter of its run time with an ExpiredError, without running it', async () => {
      const fresh = await expiring();
      const stale = await expiring(schedule(0, { expiresAfter: 30 }));
      clock.advance(45);
      await drain();
      expect(seen).to.deep.equal([{ ran: 'expiring' }]);
      expect((await getResult(fresh.id)).status).to.equal('SUCCESSFUL');
      const r = await getResult(stale.id);
      expect(r.status).to.equal('FAILED');
      expect(r.attempts).to.equal(0);
      expect(r.errors[0]!.exceptionClass).to.equal('ExpiredError');
    });

    it('refuses to enqueue into a full queue (maxQueueSize), naming the queue and its limit', async () => {
      configure({ maxQueueSize: { small: 2 } });
      try {
        await bounded(1);
        await bounded(2);
        await expectReject(() => bounded(3), QueueFullError, /Queue "small" is full: it holds 2 pending task\(s\) and its maxQueueSize is 2/);
        await expectReject(() => bounded.bulk([[4]]), QueueFullError, /Queue "small" is full/);
        expect(await pending()).to.equal(2);
        expect((await echo('other queue')).outcome).to.equal('created');
      } finally {
        configure({ maxQueueSize: {} });
      }
    });

    it('stores a task on its named connection and runs it with a worker on that connection', async () => {
      const reportsUrl = `sqlite:${path.join(db.dir, 'reports.sqlite3')}`;
      configure({ connections: { reports: reportsUrl } });
      try {
        const s = await settingsFor(reportsUrl, db.settings.tablePrefix, db.dir);
        await runMigrations((await storeFor(s)).conn, s.tablePrefix);
        const ref = await reports(4);
        expect(await pending()).to.equal(0);
        const settings = { ...db.settings, connections: { reports: s.database } };
        const summary = await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), connection: 'reports' }, settings);
        expect(summary.succeeded).to.equal(1);
        expect((await getResult(ref.id, { connection: 'reports' })).returnValue).to.equal(40);
        await expectReject(() => getResult(ref.id), TaskNotFoundError, /No task with id/);
      } finally {
        configure({ connections: {} });
      }
    });
  },
);

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

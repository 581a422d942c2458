/**
 * The django-background-tasks semantics (issue 3), and the reference's bugs fixed, on every
 * database. Test names follow the behaviour (and the reference test they mirror, where one does).
 */
import { expect } from 'chai';
import {
  background,
  schedule,
  Repeat,
  InvalidTaskError,
  PermanentTaskError,
  events,
  getResult,
  createdBy,
  failedTasks,
  succeededTasks,
  setLogger,
} from '../../core/index.js';
import { getLogger } from '../../core/base/log.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, type TestDatabase } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const HOUR = 3_600_000;
const calls: string[] = [];
let failUntilAttempt = 0;

const mail = background({ name: 'sem.mail', queue: 'mail', priority: 2 }, function mail(to: string) {
  calls.push(`mail:${to}`);
});
const hourly = background({ name: 'sem.hourly' }, function hourly(tag: string) {
  calls.push(`hourly:${tag}`);
  return tag;
});
const sometimes = background({ name: 'sem.sometimes', context: true }, function sometimes(ctx, tag: string) {
  calls.push(`sometimes:${tag}:${ctx.attempt}`);
  if (ctx.attempt <= failUntilAttempt) throw new Error(`fails on attempt ${ctx.attempt}`);
  return ctx.attempt;
});
class NotWorthRetrying extends InvalidTaskError {}
const invalid = background({ name: 'sem.invalid', maxAttempts: 5 }, function invalid() {
  throw new NotWorthRetrying('bad input');
});
const always = background({ name: 'sem.always' }, function always(tag: string) {
  throw new Error(`always ${tag}`);
});

const T0 = Date.UTC(2030, 2, 1, 10, 0, 0);

contract('django-background-tasks semantics', (db) => {
  const { clock, drain } = manualClockSuite(db, T0, () => {
    calls.length = 0;
    failUntilAttempt = 0;
  });
  const pendingRows = async () =>
    (await db.store.knex(db.store.tables.tasks).select('*').orderBy('id')) as Array<Record<string, unknown>>;
  const pendingOf = async (id: string) => (await db.store.findPending(id))!;

  describe('scheduling', () => {
    it('accepts seconds, a Date and a duration object, resolved when called (not when defined)', async () => {
      const laterDef = background({ name: 'sem.later', schedule: { minutes: 2 } }, function later() {});
      clock.advance(30);
      const a = await laterDef();
      const b = await laterDef(schedule(90));
      const c = await laterDef(schedule({ hours: 1, seconds: 5 }));
      const d = await laterDef(schedule(new Date(T0 + 10 * HOUR)));
      expect(a.runAt.getTime()).to.equal(T0 + 30_000 + 120_000);
      expect(b.runAt.getTime()).to.equal(T0 + 30_000 + 90_000);
      expect(c.runAt.getTime()).to.equal(T0 + 30_000 + HOUR + 5_000);
      expect(d.runAt.getTime()).to.equal(T0 + 10 * HOUR);
    });

    it('schedule(0) means now even when the task defaults to later (the reference ignored 0)', async () => {
      const laterDef = background({ name: 'sem.later2', schedule: 60 }, function later2() {});
      const r = await laterDef(schedule(0));
      expect(r.runAt.getTime()).to.equal(T0);
    });

    it('merges options: call site > .using() > background() > settings, an explicit 0 or null winning', async () => {
      const a = await mail('a');
      const b = await mail('b', schedule(undefined, { priority: 0, queue: null }));
      const urgent = mail.using({ priority: 9, maxAttempts: 3 });
      const c = await urgent('c');
      const d = await urgent('d', schedule(0, { priority: -1 }));
      const rows = await pendingRows();
      expect(rows.map((r) => [Number(r.priority), r.queue])).to.deep.equal([
        [2, 'mail'],
        [0, null],
        [9, 'mail'],
        [-1, 'mail'],
      ]);
      expect((await pendingOf(c.id)).maxAttempts).to.equal(3);
      expect((await pendingOf(a.id)).maxAttempts).to.equal(null);
      void b;
      void d;
    });

    it('stores the verbose name and the creator, and finds tasks by creator', async () => {
      const user = { type: 'auth.user', id: 7 };
      await mail('x', schedule(0, { verboseName: 'Welcome mail', creator: user }));
      await mail('y', schedule(0, { creator: { type: 'auth.user', id: 8 } }));
      const mine = await createdBy(user);
      expect(mine).to.have.length(1);
      expect(mine[0]).to.include({ verboseName: 'Welcome mail', status: 'READY' });
      expect(mine[0]!.creator).to.deep.equal({ type: 'auth.user', id: '7' });
      await drain();
      const done = await createdBy(user);
      expect(done.map((r) => r.status)).to.deep.equal(['SUCCESSFUL']);
    });

    it('accepts a dictionary argument (int-like keys are strings in JSON) and runs it', async () => {
      const dict = background({ name: 'sem.dict' }, function dict(d: Record<string, number>) {
        calls.push(`dict:${Object.keys(d).join(',')}`);
      });
      const r = await dict({ 22222: 2, 1: 1 });
      expect((await pendingOf(r.id)).args).to.equal('[{"1":1,"22222":2}]');
      await drain();
      expect(calls).to.deep.equal(['dict:1,22222']);
    });
  });

  describe('dedupe actions on the task hash', () => {
    it("'rescheduleExisting' moves an unlocked pending twin to the new time and priority, inserting nothing", async () => {
      const first = await hourly('r');
      const second = await hourly('r', schedule(90, { action: 'rescheduleExisting', priority: 4 }));
      expect(second.outcome).to.equal('rescheduled');
      expect(second.id).to.equal(first.id);
      const rows = await pendingRows();
      expect(rows).to.have.length(1);
      expect(Number(rows[0]!.run_at)).to.equal(T0 + 90_000);
      expect(Number(rows[0]!.priority)).to.equal(4);
    });

    it("'checkExisting' inserts nothing when an unlocked twin exists, keeping its run time", async () => {
      const first = await hourly('c');
      const second = await hourly('c', schedule(90, { action: 'checkExisting' }));
      expect(second).to.include({ outcome: 'existing', id: first.id });
      expect(second.runAt.getTime()).to.equal(T0);
      expect(await pendingRows()).to.have.length(1);
    });

    it("'replaceExisting' (removeExisting: true) deletes unlocked twins in any queue, then inserts", async () => {
      await hourly('x', schedule(0, { queue: 'one' }));
      await hourly('x', schedule(0, { queue: 'two' }));
      await hourly('other');
      const r = await hourly('x', schedule(30, { removeExisting: true }));
      expect(r.outcome).to.equal('replaced');
      const rows = await pendingRows();
      expect(rows.map((x) => [x.args, Number(x.run_at)])).to.deep.equal([
        ['["other"]', T0],
        ['["x"]', T0 + 30_000],
      ]);
      const fresh = await hourly('y', schedule(0, { action: 'replaceExisting' }));
      expect(fresh.outcome).to.equal('created');
    });

    it('matches twins in the same queue only when a queue is given', async () => {
      await mail('q', schedule(0, { queue: 'other' }));
      const r = await mail('q', schedule(0, { action: 'checkExisting' }));
      expect(r.outcome).to.equal('created');
      const again = await mail('q', schedule(0, { action: 'checkExisting', queue: 'other' }));
      expect(again.outcome).to.equal('existing');
    });

    it('leaves running (locked) twins alone', async () => {
      const first = await hourly('busy');
      await db.store.claim({ names: ['sem.hourly'], queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'w', nowMs: T0, leaseMs: 60_000, limit: 1 });
      const r = await hourly('busy', schedule(0, { action: 'checkExisting' }));
      expect(r.outcome).to.equal('created');
      expect(r.id).not.to.equal(first.id);
      const gone = await hourly('busy', schedule(0, { action: 'replaceExisting' }));
      expect(gone.outcome).to.equal('replaced');
      expect((await pendingRows()).map((x) => String(x.id))).to.deep.equal([first.id, gone.id]);
    });

    it('is atomic: 20 concurrent checkExisting calls leave exactly one row', async () => {
      const refs = await Promise.all(Array.from({ length: 20 }, () => hourly('race', schedule(0, { action: 'checkExisting' }))));
      expect(await pendingRows()).to.have.length(1);
      expect(refs.filter((r) => r.outcome === 'created')).to.have.length(1);
      expect(new Set(refs.map((r) => r.id)).size).to.equal(1);
    });

    it('is atomic: 20 concurrent replaceExisting calls leave exactly one row', async () => {
      await Promise.all(Array.from({ length: 20 }, (_, i) => hourly('swap', schedule(i, { action: 'replaceExisting' }))));
      expect(await pendingRows()).to.have.length(1);
    });

    it('rejects removeExisting combined with another action', async () => {
      expect(() => schedule(0, { removeExisting: true, action: 'checkExisting' })).to.throw(/removeExisting: true cannot be combined with action "checkExisting"/);
    });
  });

  describe('repeat', () => {
    it('schedules the successor exactly one interval after the slot, with the same call and attempts 0 (test_repeat)', async () => {
      const until = new Date(T0 + 10 * HOUR);
      const first = await hourly('h', schedule(0, { repeat: Repeat.HOURLY, repeatUntil: until, verboseName: 'Hourly', priority: 3 }));
      await drain();
      const rows = await pendingRows();
      expect(rows).to.have.length(1);
      const next = await pendingOf(String(rows[0]!.id));
      expect(next.id).not.to.equal(first.id);
      expect(next).to.include({ name: 'sem.hourly', args: '["h"]', attempts: 0, priority: 3, verboseName: 'Hourly', repeatEvery: 3600, repeatUntil: until.getTime() });
      expect(next.runAt).to.equal(T0 + HOUR);
      expect(next.scheduledAt).to.equal(T0 + HOUR);
      expect(next.hash).to.equal((await db.store.findCompleted(first.id))!.hash);
    });

    it('skips missed slots: a week-overdue hourly task repeats at original + 1 week + 1 hour (test_repetition_in_future)', async () => {
      await hourly('late', schedule(0, { repeat: Repeat.HOURLY }));
      clock.advance(7 * 24 * 3600 + 60);
      await drain();
      const [row] = await pendingRows();
      expect(Number(row!.run_at)).to.equal(T0 + 7 * 24 * HOUR + HOUR);
      expect(Number(row!.run_at)).to.be.greaterThan(clock.now());
    });

    it('keeps the phase after retries: the successor follows the original slot, not the retried run time (#251)', async () => {
      failUntilAttempt = 1;
      await sometimes('phase', schedule(0, { repeat: Repeat.DAILY }));
      await drain();
      clock.advance(6);
      await drain();
      const [row] = await pendingRows();
      expect(Number(row!.run_at)).to.equal(T0 + 24 * HOUR);
    });

    it('schedules no successor at or after repeatUntil', async () => {
      await hourly('end', schedule(0, { repeat: Repeat.HOURLY, repeatUntil: new Date(T0 + HOUR) }));
      await drain();
      expect(await pendingRows()).to.have.length(0);
      await hourly('end2', schedule(0, { repeat: Repeat.HOURLY, repeatUntil: new Date(T0 + HOUR + 1) }));
      await drain();
      expect(await pendingRows()).to.have.length(1);
    });

    it('a repeating task that fails for good still schedules its next repetition (#296)', async () => {
      await always('daily', schedule(0, { repeat: Repeat.DAILY, maxAttempts: 1 }));
      await drain();
      const rows = await pendingRows();
      expect(rows).to.have.length(1);
      expect(Number(rows[0]!.run_at)).to.equal(T0 + 24 * HOUR);
      expect(await failedTasks()).to.have.length(1);
    });

    it('repeatOnFailure: false ends the chain when the task fails for good', async () => {
      await always('stop', schedule(0, { repeat: Repeat.DAILY, maxAttempts: 1, repeatOnFailure: false }));
      await drain();
      expect(await pendingRows()).to.have.length(0);
    });

    it('retries only until the next slot is due, then fails and hands over to that slot', async () => {
      const r = await always('minutely', schedule(0, { repeat: 60 }));
      await drain(); // attempt 1 fails: retry in 6 s (before the next slot at +60 s)
      expect((await pendingOf(r.id)).runAt).to.equal(T0 + 6_000);
      clock.advance(6);
      await drain(); // attempt 2 fails: retry in 21 s, at +27 s, still before +60 s
      expect((await pendingOf(r.id)).runAt).to.equal(T0 + 27_000);
      clock.advance(21);
      await drain(); // attempt 3 fails: a retry in 86 s would pass the +60 s slot: failed, successor at +60 s
      expect(await db.store.findPending(r.id)).to.equal(null);
      const done = (await db.store.findCompleted(r.id))!;
      expect(done.failedAt).to.equal(T0 + 27_000);
      expect(done.attempts).to.equal(3);
      const rows = await pendingRows();
      expect(rows.map((x) => [Number(x.run_at), Number(x.attempts)])).to.deep.equal([[T0 + 60_000, 0]]);
    });
  });

  describe('failures and attempts', () => {
    it('counts every execution, the successful one included', async () => {
      failUntilAttempt = 2;
      const r = await sometimes('count');
      await drain();
      clock.advance(6);
      await drain();
      clock.advance(21);
      await drain();
      const done = (await db.store.findCompleted(r.id))!;
      expect(done.attempts).to.equal(3);
      expect(done.returnValue).to.equal('3');
    });

    it('keeps the last error on a task that failed before and then succeeded (flagged hasError)', async () => {
      failUntilAttempt = 1;
      const r = await sometimes('flag');
      await drain();
      clock.advance(6);
      await drain();
      const result = await getResult(r.id);
      expect(result.status).to.equal('SUCCESSFUL');
      expect(result.hasError).to.equal(true);
      expect(result.errors.map((e) => e.message)).to.deep.equal(['fails on attempt 1']);
      const done = (await db.store.findCompleted(r.id))!;
      expect(done.failedAt).to.equal(null);
      expect(done.lastError).to.match(/fails on attempt 1/);
    });

    it('maxAttempts 1: the first failure is final; another task is untouched (test_max_attempts_one)', async () => {
      const a = await always('one', schedule(0, { maxAttempts: 1 }));
      const b = await always('two', schedule(60, { maxAttempts: 1 }));
      await drain();
      const done = (await db.store.findCompleted(a.id))!;
      expect(done).to.include({ attempts: 1, failedAt: T0 });
      expect(done.lastError).to.match(/always one/);
      expect((await pendingOf(b.id)).attempts).to.equal(0);
    });

    it('maxAttempts 2: one failure leaves the task pending (test_max_attempts_two)', async () => {
      const a = await always('twice', schedule(0, { maxAttempts: 2 }));
      await drain();
      expect((await pendingOf(a.id)).attempts).to.equal(1);
      expect(await db.store.findCompleted(a.id)).to.equal(null);
    });

    it('uses the maxAttempts setting when neither the task nor the call sets it', async () => {
      const a = await always('setting');
      await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, { ...db.settings, maxAttempts: 1 });
      expect((await db.store.findCompleted(a.id))!.attempts).to.equal(1);
    });

    it('a task whose attempts already reached the limit runs once more, then fails (test_failed_at_set_after_MAX_ATTEMPTS)', async () => {
      const a = await always('preset', schedule(0, { maxAttempts: 3 }));
      await db.store.knex(db.store.tables.tasks).where('id', a.id).update({ attempts: 3 });
      await drain();
      const done = (await db.store.findCompleted(a.id))!;
      expect(done.attempts).to.equal(4);
      expect(done.failedAt).to.equal(T0);
      expect(calls).to.deep.equal([]);
    });

    it('fails at once on an InvalidTaskError subclass despite maxAttempts (test_invalid_task)', async () => {
      const r = await invalid();
      await drain();
      const done = (await db.store.findCompleted(r.id))!;
      expect(done.attempts).to.equal(1);
      expect(done.errors[0]!.class).to.equal('NotWorthRetrying');
      expect(new NotWorthRetrying('x')).to.be.instanceOf(PermanentTaskError);
    });

    it('lists failed and succeeded tasks within a time window', async () => {
      await always('old', schedule(0, { maxAttempts: 1 }));
      await hourly('old-ok');
      await drain();
      clock.advance(2 * 3600);
      await always('new', schedule(0, { maxAttempts: 1 }));
      await hourly('new-ok');
      await drain();
      expect((await failedTasks()).length).to.equal(2);
      expect((await failedTasks(3600)).map((r) => r.args)).to.deep.equal([['new']]);
      expect((await succeededTasks(3600)).map((r) => r.args)).to.deep.equal([['new-ok']]);
      expect((await succeededTasks()).length).to.equal(2);
    });
  });

  describe('events', () => {
    const seen: string[] = [];
    const offs: Array<() => void> = [];
    beforeEach(() => {
      seen.length = 0;
      for (const e of ['task:created', 'task:started', 'task:succeeded', 'task:error', 'task:rescheduled', 'task:failed', 'task:finished'] as const) {
        offs.push(events.on(e, (p) => void seen.push(`${e}:${p.name}`)));
      }
    });
    afterEach(() => offs.splice(0).forEach((off) => off()));

    it('emits started → succeeded → finished on success', async () => {
      await hourly('ev');
      await drain();
      expect(seen).to.deep.equal(['task:created:sem.hourly', 'task:started:sem.hourly', 'task:succeeded:sem.hourly', 'task:finished:sem.hourly']);
    });

    it('emits started → error → rescheduled → finished on a retry', async () => {
      await always('ev');
      seen.length = 0;
      await drain();
      expect(seen).to.deep.equal(['task:started:sem.always', 'task:error:sem.always', 'task:rescheduled:sem.always', 'task:finished:sem.always']);
    });

    it('emits started → error → failed → finished on a permanent failure', async () => {
      await invalid();
      seen.length = 0;
      await drain();
      expect(seen).to.deep.equal(['task:started:sem.invalid', 'task:error:sem.invalid', 'task:failed:sem.invalid', 'task:finished:sem.invalid']);
    });

    it('logs a listener that throws and still settles the task', async () => {
      const before = getLogger();
      const log = recordingLogger();
      setLogger(log);
      const off = events.on('task:succeeded', () => {
        throw new Error('listener bug');
      });
      try {
        const r = await hourly('robust');
        await drain();
        expect((await getResult(r.id)).status).to.equal('SUCCESSFUL');
        expect(log.find('error', /task:succeeded listener threw/)).to.have.length(1);
      } finally {
        off();
        setLogger(before);
      }
    });
  });
});

export type { TestDatabase };

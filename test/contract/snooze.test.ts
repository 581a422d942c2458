/**
 * Snooze on every database: a task that calls ctx.snooze(s) or returns snooze(s) is READY again at
 * now + s with its attempt given back, no error recorded, and one more snooze counted; the
 * maxSnoozes setting bounds it (TooManySnoozesError); a bad duration fails the attempt; a cancel
 * requested meanwhile wins; its expiry still applies.
 */
import { expect } from 'chai';
import { background, cancel, events, getResult, isSnooze, schedule, snooze, TooManySnoozesError } from '../../core/index.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { recordingLogger } from '../helpers/log.js';
import { taskRows } from '../helpers/stored-rows.js';

const after: string[] = [];
let release: (() => void) | null = null;

const viaContext = background({ name: 'snooze.ctx', context: true }, async function viaContext(ctx, seconds: number) {
  if (seconds > 0) ctx.snooze(seconds);
  after.push('ran to the end');
  return 'done';
});
const viaReturn = background({ name: 'snooze.ret' }, function viaReturn(seconds: number) {
  if (seconds > 0) return snooze(seconds);
  return 'done';
});
const always = background({ name: 'snooze.always', context: true }, function always(ctx) {
  ctx.snooze(1);
});
const badDuration = background({ name: 'snooze.bad', context: true, maxAttempts: 1 }, function badDuration(ctx, seconds: unknown) {
  ctx.snooze(seconds as number);
});
const waitsThenSnoozes = background({ name: 'snooze.waits', context: true }, async function waitsThenSnoozes(ctx) {
  await new Promise<void>((r) => (release = r));
  ctx.snooze(60);
});
const swallows = background({ name: 'snooze.swallows', context: true }, function swallows(ctx, rethrow: boolean) {
  try {
    ctx.snooze(60);
  } catch (err) {
    if (rethrow && isSnooze(err)) throw err;
  }
  return 'swallowed';
});
const failsOnce = background({ name: 'snooze.failsOnce', context: true }, function failsOnce(ctx) {
  if (ctx.attempt === 1) throw new Error('first attempt fails');
  ctx.snooze(10);
});

const T0 = Date.UTC(2031, 4, 5, 6);

contract('snooze', (db) => {
  const { clock, drain } = manualClockSuite(db, T0, () => {
    after.length = 0;
    release = null;
  });
  const row = async () => (await taskRows(db))[0]!;

  for (const [how, call] of [
    ['ctx.snooze()', () => viaContext(30)],
    ['a returned snooze()', () => viaReturn(30)],
  ] as const) {
    it(`${how}: READY at now + seconds, attempt given back, no error, one snooze counted, task:snoozed emitted`, async () => {
      const seen: Array<{ id: string; runAt: number }> = [];
      const off = events.on('task:snoozed', (e) => {
        seen.push({ id: e.id, runAt: e.runAt });
      });
      try {
        const ref = await call();
        clock.advance(2);
        const s = await drain();
        expect([s.snoozed, s.failed, s.succeeded]).to.deep.equal([1, 0, 0]);
        const r = await row();
        expect([Number(r.run_at), Number(r.attempts), Number(r.snoozes), r.last_error, r.errors ?? null, r.locked_by]).to.deep.equal([T0 + 32_000, 0, 1, null, null, null]);
        expect(seen).to.deep.equal([{ id: ref.id, runAt: T0 + 32_000 }]);
        expect(after).to.deep.equal([]);
        const res = await getResult(ref.id);
        expect([res.status, res.attempts, res.errors.length, res.hasError]).to.deep.equal(['READY', 0, 0, false]);
        // Not due before its time; then it runs (attempt 1).
        clock.advance(29.999);
        expect((await drain()).ran).to.equal(0);
        clock.advance(0.001);
        await db.store.knex(db.store.tables.tasks).update({ args: '[0]' });
        expect((await drain()).succeeded).to.equal(1);
        const done = await getResult(ref.id);
        expect([done.status, done.attempts, done.returnValue]).to.deep.equal(['SUCCESSFUL', 1, 'done']);
        const completed = (await db.store.knex(db.store.tables.completed).first()) as Record<string, unknown>;
        expect(Number(completed.snoozes)).to.equal(1);
      } finally {
        off();
      }
    });
  }

  it('keeps the attempts of earlier failed attempts as they were', async () => {
    await failsOnce();
    await drain();
    clock.advance(3600);
    await drain();
    const r = await row();
    expect([Number(r.attempts), Number(r.snoozes), (JSON.parse(String(r.errors)) as unknown[]).length]).to.deep.equal([1, 1, 1]);
  });

  it('fails the task for good with TooManySnoozesError on one snooze more than maxSnoozes', async () => {
    const ref = await always();
    const settings = { ...db.settings, maxSnoozes: 2 };
    for (let i = 0; i < 2; i++) {
      expect((await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, settings)).snoozed).to.equal(1);
      clock.advance(1);
    }
    expect((await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, settings)).failed).to.equal(1);
    const r = await getResult(ref.id);
    expect(r.status).to.equal('FAILED');
    expect(r.errors.at(-1)!.exceptionClass).to.equal(TooManySnoozesError.name);
    expect(r.errors.at(-1)!.message).to.match(/snoozed 2 times/);
  });

  it('maxSnoozes 0 forbids snoozing: the first snooze fails the task', async () => {
    const ref = await always();
    await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger() }, { ...db.settings, maxSnoozes: 0 });
    const r = await getResult(ref.id);
    expect([r.status, r.errors.at(-1)!.exceptionClass]).to.deep.equal(['FAILED', 'TooManySnoozesError']);
  });

  for (const seconds of [0, -5, null, 31_536_001, '10']) {
    it(`a snooze of ${JSON.stringify(seconds) ?? String(seconds)} fails the attempt with a ValidationError naming it`, async () => {
      const ref = await badDuration(seconds);
      await drain();
      const r = await getResult(ref.id);
      expect(r.status).to.equal('FAILED');
      expect(r.errors[0]!.exceptionClass).to.equal('ValidationError');
      expect(r.errors[0]!.message).to.match(/Invalid snooze: .+ — expected seconds > 0 and at most 31536000/);
    });
  }

  it('a cancel requested while the task ran wins over its snooze', async () => {
    const ref = await waitsThenSnoozes();
    const w = await new Worker({ clock, sleep: 0.02, logger: recordingLogger() }).start(db.settings);
    try {
      await waitUntil(() => release !== null, 'the task to start');
      expect((await cancel(ref.id)).status).to.equal('RUNNING');
      release!();
      await waitUntil(async () => (await getResult(ref.id)).isFinished, 'the task to finish');
    } finally {
      await w.stop(0);
    }
    const r = await getResult(ref.id);
    expect(r.status).to.equal('FAILED');
    expect(r.errors.at(-1)!.exceptionClass).to.equal('CancelledError');
  });

  it('a snooze caught by the task itself is swallowed; rethrown (isSnooze) it snoozes', async () => {
    const a = await swallows(false);
    const b = await swallows(true);
    await drain();
    expect((await getResult(a.id)).returnValue).to.equal('swallowed');
    expect((await getResult(b.id)).status).to.equal('READY');
  });

  it('a task that snoozes past its expiresAfter is failed with an ExpiredError when next claimed', async () => {
    const ref = await viaReturn(120, schedule(0, { expiresAfter: 60 }));
    await drain();
    expect((await getResult(ref.id)).status).to.equal('READY');
    clock.advance(120);
    await drain();
    const r = await getResult(ref.id);
    expect([r.status, r.errors.at(-1)!.exceptionClass]).to.deep.equal(['FAILED', 'ExpiredError']);
  });
});

/**
 * Results and errors the database refuses (issue 15, item 2), on every database: a return value
 * over maxResultBytes fails its task with the size and the limit; NUL characters in error text are
 * stored visibly; a batch with one row the database refuses writes the others, once, and records
 * the refused one FAILED with the database's reason; on MariaDB a result over max_allowed_packet is
 * refused before it is sent; and a statement the server answers by dropping the connection (a TCP
 * proxy that drops over-sized requests) is told from an outage.
 */
import { expect } from 'chai';
import { background, getResult, schedule } from '../../core/index.js';
import { resetClock, setClock, ManualClock } from '../../core/base/clock.js';
import { Worker, type WorkerOptions } from '../../core/worker/worker.js';
import { contract, settingsFor, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { TcpProxy, throughProxy } from '../helpers/tcp-proxy.js';
import type { Settings } from '../../core/config/settings.js';

const MiB = 1024 * 1024;
const runs = new Map<string, number>();
const count = (tag: string) => runs.set(tag, (runs.get(tag) ?? 0) + 1);

const big = background({ name: 'refused.big' }, function big(tag: string, mib: number) {
  count(tag);
  return 'x'.repeat(mib * MiB);
});
const small = background({ name: 'refused.small' }, async function small(tag: string, value: string) {
  count(tag);
  // Long enough for the batch's other tasks to finish, so their results share one write.
  await new Promise((r) => setTimeout(r, 20));
  return value;
});
const throwsNul = background({ name: 'refused.throwsNul' }, function throwsNul(tag: string) {
  count(tag);
  const err = new Error('bad\u0000byte in the message');
  err.name = 'Nul\u0000Error';
  throw err;
});

const poisoned = background({ name: 'refused.poisonedError' }, function poisonedError(tag: string) {
  count(tag);
  throw new Error('poison pill');
});

const T0 = Date.UTC(2030, 5, 1, 8);

contract('results and errors the database refuses', (db) => {
  const clock = new ManualClock(T0);
  const start = (extra: WorkerOptions = {}, settings: Settings = db.settings) =>
    new Worker({ clock, sleep: 0.02, lockTimeout: 30, heartbeatInterval: 1, logger: recordingLogger(), ...extra }).start(settings);
  const finished = async (ids: string[]) => {
    for (const id of ids) if (!(await getResult(id)).isFinished) return false;
    return true;
  };

  beforeEach(async () => {
    await db.reset();
    clock.set(T0);
    setClock(clock);
    runs.clear();
  });
  afterEach(() => resetClock());

  it('fails a task whose return value is over maxResultBytes (1 MiB by default) for good, naming the size and the limit', async function () {
    this.timeout(30_000);
    const ref = await big('over', 20);
    const w = await start();
    try {
      await waitUntil(() => finished([ref.id]), 'the task to finish', 20_000);
    } finally {
      await w.stop(0);
    }
    const r = await getResult(ref.id);
    expect(r.status).to.equal('FAILED');
    expect(r.attempts).to.equal(1);
    expect(runs.get('over')).to.equal(1);
    expect(r.errors).to.have.length(1);
    expect(r.errors[0]!.exceptionClass).to.equal('ValidationError');
    expect(r.errors[0]!.message).to.equal(
      `return value of task refused.big #${ref.id} is ${20 * MiB + 2} bytes of JSON — expected at most ${MiB} (the maxResultBytes setting); store large data elsewhere and return its id`,
    );
  });

  it('stores NUL characters of an error (message, class, stack) as the six characters \\u0000', async () => {
    const ref = await throwsNul('nul', schedule(0, { maxAttempts: 2 }));
    const w = await start();
    try {
      await waitUntil(async () => (await getResult(ref.id)).errors.length === 1, 'the first attempt to be recorded');
      clock.advance(60);
      await waitUntil(() => finished([ref.id]), 'the task to finish');
    } finally {
      await w.stop(0);
    }
    const r = await getResult(ref.id);
    expect(r.status).to.equal('FAILED');
    expect(runs.get('nul')).to.equal(2);
    expect(r.errors.map((e) => [e.exceptionClass, e.message])).to.deep.equal([
      ['Nul\\u0000Error', 'bad\\u0000byte in the message'],
      ['Nul\\u0000Error', 'bad\\u0000byte in the message'],
    ]);
    expect(r.errors[1]!.traceback).to.match(/^Nul\\u0000Error: bad\\u0000byte in the message\n/);
    const row = (await db.store.knex(db.store.tables.completed).where('task_id', ref.id).first()) as { last_error: string; errors: string };
    expect(row.last_error).to.include('bad\\u0000byte').and.not.include('\u0000');
    expect(row.errors).not.to.include('\u0000');
  });

  it('writes the innocent results of a batch once and records the one the database refuses FAILED with its reason', async function () {
    this.timeout(30_000);
    const { completed } = db.store.tables;
    if (db.name === 'sqlite') {
      await db.store.knex.raw(
        `CREATE TRIGGER bg_poison BEFORE INSERT ON "${completed}" WHEN NEW.return_value LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poisoned result refused'); END`,
      );
    } else {
      const q = db.name === 'mysql' ? '`' : '"';
      await db.store.knex.raw(`ALTER TABLE ${q}${completed}${q} ADD CONSTRAINT bg_poison CHECK (return_value IS NULL OR return_value NOT LIKE '%poison%')`);
    }
    try {
      const refs: Array<{ id: string }> = [];
      for (const tag of ['i1', 'i2', 'p', 'i3', 'i4']) refs.push(await small(tag, tag === 'p' ? 'poison' : `fine ${tag}`));
      const log = recordingLogger();
      const w = await start({ concurrency: 5, settleFlushMs: 300, logger: log });
      try {
        await waitUntil(() => finished(refs.map((r) => r.id)), 'the five tasks to finish', 20_000);
      } finally {
        await w.stop(0);
      }
      for (const tag of ['i1', 'i2', 'p', 'i3', 'i4']) expect(runs.get(tag), tag).to.equal(1);
      for (const [i, tag] of ['i1', 'i2', 'p', 'i3', 'i4'].entries()) {
        const r = await getResult(refs[i]!.id);
        if (tag === 'p') continue;
        expect([r.status, r.returnValue, r.attempts, r.errors.length]).to.deep.equal(['SUCCESSFUL', `fine ${tag}`, 1, 0]);
      }
      const p = await getResult(refs[2]!.id);
      expect(p.status).to.equal('FAILED');
      expect(p.attempts).to.equal(1);
      expect(p.errors.map((e) => e.exceptionClass)).to.deep.equal(['RecordRefusedError']);
      expect(p.errors[0]!.message).to.match(new RegExp(`^Task refused.small #${refs[2]!.id}: the result of attempt 1 \\(8 bytes of JSON\\) could not be stored; the database refused it: `));
      expect(p.errors[0]!.message).to.match(db.name === 'sqlite' ? /poisoned result refused/ : /bg_poison/);
      expect(log.find('error', /the database refused to store/)).to.have.length(1);
      expect(log.find('warn', /database unreachable/)).to.deep.equal([]);
    } finally {
      if (db.name === 'sqlite') await db.store.knex.raw('DROP TRIGGER bg_poison');
      else if (db.name === 'mysql') await db.store.knex.raw(`ALTER TABLE \`${completed}\` DROP CONSTRAINT bg_poison`);
      else await db.store.knex.raw(`ALTER TABLE "${completed}" DROP CONSTRAINT bg_poison`);
    }
  });

  it('records a task FAILED when the database refuses its error record, naming the original error', async function () {
    this.timeout(30_000);
    const { tasks } = db.store.tables;
    const q = db.name === 'mysql' ? '`' : '"';
    if (db.name === 'sqlite') {
      await db.store.knex.raw(
        `CREATE TRIGGER bg_poison_err BEFORE UPDATE ON "${tasks}" WHEN NEW.last_error LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poisoned error refused'); END`,
      );
    } else {
      await db.store.knex.raw(`ALTER TABLE ${q}${tasks}${q} ADD CONSTRAINT bg_poison_err CHECK (last_error IS NULL OR last_error NOT LIKE '%poison%')`);
    }
    try {
      const ref = await poisoned('pe', schedule(0, { maxAttempts: 3 }));
      const other = await small('ok', 'fine');
      const log = recordingLogger();
      const w = await start({ concurrency: 2, logger: log });
      try {
        await waitUntil(() => finished([ref.id, other.id]), 'both tasks to finish', 20_000);
      } finally {
        await w.stop(0);
      }
      expect([runs.get('pe'), runs.get('ok')]).to.deep.equal([1, 1]);
      expect((await getResult(other.id)).status).to.equal('SUCCESSFUL');
      const r = await getResult(ref.id);
      expect([r.status, r.attempts]).to.deep.equal(['FAILED', 1]);
      expect(r.errors.map((e) => e.exceptionClass)).to.deep.equal(['RecordRefusedError']);
      expect(r.errors[0]!.message).to.match(
        new RegExp(`^Task refused.poisonedError #${ref.id}: the error record of attempt 1 \\(Error: poison pill\\) could not be stored; the database refused it: `),
      );
      expect(r.errors[0]!.message).to.match(db.name === 'sqlite' ? /poisoned error refused/ : /bg_poison_err/);
      expect(log.find('warn', /database unreachable/)).to.deep.equal([]);
    } finally {
      if (db.name === 'sqlite') await db.store.knex.raw('DROP TRIGGER bg_poison_err');
      else await db.store.knex.raw(`ALTER TABLE ${q}${tasks}${q} DROP CONSTRAINT bg_poison_err`);
    }
  });

  it(
    db.name === 'mysql'
      ? 'refuses a 20 MiB result over max_allowed_packet before sending it (maxResultBytes raised): FAILED with the sizes and the limit, the batch’s other results written once'
      : 'stores a 20 MiB result when maxResultBytes is raised above it, with the batch’s other results',
    async function () {
      this.timeout(60_000);
      const settings = { ...db.settings, maxResultBytes: 32 * MiB };
      const refs = [await small('i1', 'one'), await big('big', 20), await small('i2', 'two')];
      const log = recordingLogger();
      const w = await start({ concurrency: 3, settleFlushMs: 300, logger: log }, settings);
      try {
        await waitUntil(() => finished(refs.map((r) => r.id)), 'the three tasks to finish', 50_000);
      } finally {
        await w.stop(0);
      }
      for (const tag of ['i1', 'big', 'i2']) expect(runs.get(tag), tag).to.equal(1);
      expect((await getResult(refs[0]!.id)).returnValue).to.equal('one');
      expect((await getResult(refs[2]!.id)).returnValue).to.equal('two');
      const r = await getResult(refs[1]!.id);
      expect(log.find('warn', /database unreachable/)).to.deep.equal([]);
      if (db.name !== 'mysql') {
        expect(r.status).to.equal('SUCCESSFUL');
        expect((r.returnValue as string).length).to.equal(20 * MiB);
        return;
      }
      const [[{ m }]] = (await db.store.knex.raw('SELECT @@max_allowed_packet AS m')) as [[{ m: unknown }]];
      expect(r.status).to.equal('FAILED');
      expect(r.attempts).to.equal(1);
      expect(r.errors.map((e) => e.exceptionClass)).to.deep.equal(['RecordRefusedError']);
      expect(r.errors[0]!.message).to.include(`the result of attempt 1 (${20 * MiB + 2} bytes of JSON) could not be stored; its return value is ${20 * MiB + 2} bytes of JSON`);
      expect(r.errors[0]!.message).to.include(`over the database server's max_allowed_packet of ${Number(m)} bytes`);
    },
  );

  if (db.name !== 'sqlite') {
    it('tells a statement the server drops the connection over from an outage: the others written once, that one FAILED, no outage reported', async function () {
      this.timeout(60_000);
      const u = new URL(db.url);
      const proxy = new TcpProxy(u.hostname, Number(u.port));
      await proxy.start();
      try {
        // Any request over 1 MiB closes its connection, as a server limit would.
        proxy.dropRequestsOver(MiB);
        const settings = { ...(await settingsFor(throughProxy(db.url, proxy.port), db.settings.tablePrefix, db.dir)), maxResultBytes: 8 * MiB };
        const refs = [await small('i1', 'one'), await big('big', 2), await small('i2', 'two'), await small('i3', 'three')];
        const log = recordingLogger();
        const w = await start({ concurrency: 4, settleFlushMs: 300, logger: log }, settings);
        try {
          await waitUntil(() => finished(refs.map((r) => r.id)), 'the four tasks to finish', 50_000);
        } finally {
          await w.stop(0);
        }
        for (const tag of ['i1', 'big', 'i2', 'i3']) expect(runs.get(tag), tag).to.equal(1);
        expect((await getResult(refs[0]!.id)).returnValue).to.equal('one');
        expect((await getResult(refs[2]!.id)).returnValue).to.equal('two');
        expect((await getResult(refs[3]!.id)).returnValue).to.equal('three');
        const r = await getResult(refs[1]!.id);
        expect(r.status).to.equal('FAILED');
        expect(r.errors.map((e) => e.exceptionClass)).to.deep.equal(['RecordRefusedError']);
        expect(r.errors[0]!.message).to.match(/the result of attempt 1 \(2097154 bytes of JSON\) could not be stored; the database refused it: /);
        expect(r.errors[0]!.message.length).to.be.below(2000);
        expect(log.find('warn', /database unreachable/)).to.deep.equal([]);
      } finally {
        await proxy.stop();
      }
    });
  }
});

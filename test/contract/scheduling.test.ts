/**
 * Cron recurrences (issue 7) on every database: `repeat` with a cron rule, and schedules declared
 * in task files that the workers enqueue exactly once per slot — across DST changes, catch-up
 * after an outage, and workers racing for the same slot.
 */
import { expect } from 'chai';
import { background, schedule } from '../../core/index.js';
import { ManualClock } from '../../core/base/clock.js';
import { setClock, resetClock } from '../../core/base/clock.js';
import { Worker } from '../../core/worker/worker.js';
import { RecurringScheduler } from '../../core/worker/cron-scheduler.js';
import { unregister } from '../../core/definition/registry.js';
import { internalsOf } from '../../core/definition/definition.js';
import type { DeclaredSchedule } from '../../core/definition/recurring.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';

const HOUR = 3_600_000;
const ran: string[] = [];
const names: string[] = [];

/** Defines a task for this suite only (removed from the registry after it). */
function define(name: string, options: Record<string, unknown>) {
  names.push(name);
  return background({ name, ...options } as never, function cronTask(...args: unknown[]) {
    ran.push(`${name}:${JSON.stringify(args)}`);
  } as never);
}

function schedulesOf(def: unknown): DeclaredSchedule[] {
  return internalsOf(def)!.schedules;
}

contract('cron recurrences', (db) => {
  const clock = new ManualClock();
  const scheduler = (schedules: DeclaredSchedule[], workerId: string, log = recordingLogger(), graceMs = 5 * 60_000) =>
    new RecurringScheduler({
      store: db.store,
      clock,
      log,
      workerId,
      schedules,
      defaultTimezone: 'UTC',
      graceMs,
      taskDefaults: () => ({ queue: null, priority: 0, expiresAfter: null, concurrencyKey: () => null }),
      names,
    });
  const tasksOf = async (name: string) =>
    ((await db.store.knex(db.store.tables.tasks).where('name', name).select('run_at').orderBy('run_at')) as Array<{ run_at: unknown }>).map((r) =>
      new Date(Number(r.run_at)).toISOString(),
    );

  beforeEach(async () => {
    await db.reset();
    ran.length = 0;
    setClock(clock);
  });
  afterEach(() => resetClock());
  after(() => names.splice(0).forEach(unregister));

  it('rejects invalid cron expressions and zones when the task is defined, with the parser’s reason', () => {
    expect(() => define('sch.bad1', { cron: '61 * * * *' })).to.throw(/^Invalid cron in background\(\) "sch.bad1": "61 \* \* \* \*".*Constraint error/);
    expect(() => define('sch.bad4', { cron: [{ cron: '0 3 * * *' }, { cron: '0 25 * * *' }] })).to.throw(/^Invalid cron\[1\]\.cron in background\(\) "sch.bad4"/);
    expect(() => define('sch.bad2', { cron: '0 3 * * *', timezone: 'Mars/Olympus' })).to.throw(/Invalid timezone.*Mars\/Olympus.*\(Invalid time zone specified: Mars\/Olympus\)/);
    expect(() => define('sch.bad3', { cron: '* * *' })).to.throw(/it has 3 fields/);
    expect(() => schedule(0, { repeat: '0 25 * * *' })).to.throw(/Invalid repeat.*Constraint error/);
  });

  it('repeats with a cron rule in its time zone: the successor is the next slot, across a DST change', async () => {
    const daily = define('sch.daily', {});
    clock.set(Date.parse('2026-10-24T01:00:00Z')); // 03:00 CEST
    await daily(schedule(0, { repeat: '0 3 * * *', timezone: 'Europe/Berlin' }));
    await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), names: ['sch.daily'] }, db.settings);
    expect(await tasksOf('sch.daily')).to.deep.equal(['2026-10-25T02:00:00.000Z']); // 03:00 CET
    clock.set(Date.parse('2026-10-25T02:00:00Z'));
    await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), names: ['sch.daily'] }, db.settings);
    expect(await tasksOf('sch.daily')).to.deep.equal(['2026-10-26T02:00:00.000Z']);
  });

  for (const w of [
    {
      zone: 'Europe/Berlin',
      change: 'fall-back',
      start: '2026-10-24T00:00:00Z',
      daily: ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z'],
    },
    {
      zone: 'America/New_York',
      change: 'spring-forward',
      start: '2026-03-07T12:00:00Z',
      daily: ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z'],
    },
  ]) {
    it(`three workers over a simulated 48 h around ${w.zone}'s ${w.change} enqueue and run every slot exactly once`, async function () {
      this.timeout(120_000);
      const tag = w.zone.replace(/\W/g, '');
      const hourly = define(`sch.hourly.${tag}`, { cron: '0 * * * *', timezone: w.zone, args: ['h'] });
      const daily = define(`sch.daily230.${tag}`, { cron: '30 2 * * *', timezone: w.zone });
      const schedules = [...schedulesOf(hourly), ...schedulesOf(daily)];
      const workers = ['w1', 'w2', 'w3'].map((id) => scheduler(schedules, id));
      const start = Date.parse(w.start);
      const end = start + 48 * HOUR;
      const names = [`sch.hourly.${tag}`, `sch.daily230.${tag}`];
      // The three workers also run what is due, at the same time, every three simulated hours.
      const runAll = () =>
        Promise.all(['w1', 'w2', 'w3'].map((workerId) => Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), names, workerId, concurrency: 2 }, db.settings)));
      let step = 0;
      for (let t = start; t <= end; t += 4 * 60_000, step++) {
        clock.set(t);
        if (step % 7 === 0) {
          await Promise.all(workers.map((x) => x.tick())); // racing for the same slots
        } else {
          for (const x of [...workers].sort(() => Math.random() - 0.5)) await x.tick();
        }
        if (step % 45 === 44) await runAll();
      }
      await runAll();
      const expectedHourly = Array.from({ length: 48 }, (_, i) => new Date(start + (i + 1) * HOUR).toISOString());
      const pendingHourly = await tasksOf(`sch.hourly.${tag}`);
      expect(pendingHourly).to.deep.equal([]);
      const done = (await db.store.knex(db.store.tables.completed).whereIn('name', names).select('name', 'scheduled_at', 'attempts')) as Array<Record<string, unknown>>;
      const slotsOf = (n: string) => done.filter((r) => r.name === n).map((r) => new Date(Number(r.scheduled_at)).toISOString()).sort();
      expect(slotsOf(`sch.hourly.${tag}`)).to.deep.equal(expectedHourly);
      expect(slotsOf(`sch.daily230.${tag}`)).to.deep.equal(w.daily);
      expect(done.every((r) => Number(r.attempts) === 1)).to.equal(true);
      expect(ran.filter((r) => r.startsWith(`sch.hourly.${tag}:`))).to.have.length(48);
      expect(ran.filter((r) => r.startsWith(`sch.hourly.${tag}:`)).every((r) => r.endsWith('["h"]'))).to.equal(true);
      expect(ran.filter((r) => r.startsWith(`sch.daily230.${tag}:`))).to.have.length(2);
      const [{ n }] = (await db.store.knex(db.store.tables.completed).whereIn('name', [`sch.hourly.${tag}`, `sch.daily230.${tag}`]).count({ n: '*' })) as Array<{ n: unknown }>;
      expect(Number(n)).to.equal(50);
    });
  }

  it('after a 6-hour outage, catchUp skip runs no missed slot, once runs one, 3 backfills three', async () => {
    const T0 = Date.parse('2030-01-01T00:00:00Z');
    const defs = [
      define('sch.cu.skip', { cron: '0 * * * *' }),
      define('sch.cu.once', { cron: '0 * * * *', catchUp: 'once' }),
      define('sch.cu.three', { cron: '0 * * * *', catchUp: 3 }),
    ];
    const log = recordingLogger();
    const s = scheduler(defs.flatMap(schedulesOf), 'w', log);
    clock.set(T0 + 60_000);
    await s.tick();
    clock.set(T0 + 6 * HOUR + 10 * 60_000);
    await s.tick();
    expect(await tasksOf('sch.cu.skip')).to.deep.equal([]);
    expect(await tasksOf('sch.cu.once')).to.deep.equal(['2030-01-01T06:00:00.000Z']);
    expect(await tasksOf('sch.cu.three')).to.deep.equal(['2030-01-01T04:00:00.000Z', '2030-01-01T05:00:00.000Z', '2030-01-01T06:00:00.000Z']);
    expect(log.find('info', /missed while no worker ran/).map((l) => l.fields.missed)).to.deep.equal([6, 6, 6]);
    clock.set(T0 + 7 * HOUR + 30_000);
    await s.tick();
    expect(await tasksOf('sch.cu.skip')).to.deep.equal(['2030-01-01T07:00:00.000Z']);
  });

  it('starts a new schedule with the first slot after it is first seen', async () => {
    const def = define('sch.new', { cron: '*/10 * * * *' });
    const s = scheduler(schedulesOf(def), 'w');
    clock.set(Date.parse('2030-01-01T00:05:00Z'));
    await s.tick();
    expect(await tasksOf('sch.new')).to.deep.equal([]);
    clock.set(Date.parse('2030-01-01T00:10:01Z'));
    await s.tick();
    expect(await tasksOf('sch.new')).to.deep.equal(['2030-01-01T00:10:00.000Z']);
  });

  it('two workers started at the same instant race to enqueue the same slot: one row', async () => {
    const def = define('sch.race', { cron: '0 * * * *' });
    const a = scheduler(schedulesOf(def), 'a');
    const b = scheduler(schedulesOf(def), 'b');
    clock.set(Date.parse('2030-01-01T00:30:00Z'));
    await a.tick();
    clock.set(Date.parse('2030-01-01T01:00:00Z'));
    const [ra, rb] = await Promise.all([a.tick(), b.tick()]);
    expect(ra.length + rb.length).to.equal(1);
    expect(await tasksOf('sch.race')).to.deep.equal(['2030-01-01T01:00:00.000Z']);
    const [{ n }] = (await db.store.knex(db.store.tables.scheduleSlots).where('name', 'sch.race').count({ n: '*' })) as Array<{ n: unknown }>;
    expect(Number(n)).to.equal(1);
  });

  it('applies a changed definition from its next slot', async () => {
    const before = define('sch.change', { cron: [{ cron: '0 * * * *', key: 'k' }] });
    clock.set(Date.parse('2030-01-01T00:30:00Z'));
    await scheduler(schedulesOf(before), 'w').tick();
    const changed: DeclaredSchedule[] = schedulesOf(before).map((s) => ({ ...s, cron: '45 * * * *' }));
    const log = recordingLogger();
    clock.set(Date.parse('2030-01-01T00:50:00Z'));
    await scheduler(changed, 'w', log).tick();
    expect(await tasksOf('sch.change')).to.deep.equal(['2030-01-01T00:45:00.000Z']);
    expect(log.find('info', /schedule changed/)).to.have.length(1);
  });

  it('a worker whose task files declare no schedule at all still reports the removed one', async () => {
    const before = define('sch.dropped', { cron: '0 * * * *' });
    clock.set(Date.parse('2030-01-01T00:30:00Z'));
    await scheduler(schedulesOf(before), 'w').tick();
    // The next release of the code keeps the task and drops its (only) schedule.
    unregister('sch.dropped');
    define('sch.dropped', {});
    const log = recordingLogger();
    const w = await new Worker({ clock, sleep: 0.02, logger: log, queues: ['nothing-runs-here'] }).start(db.settings);
    try {
      await waitUntil(() => log.find('warn', /no longer declared/).length > 0, 'the removed schedule to be reported');
    } finally {
      await w.stop(0);
    }
    expect(log.find('warn', /no longer declared/)[0]!.fields).to.include({ name: 'sch.dropped', key: 'default', cron: '0 * * * *' });
  });

  it('reports a schedule removed from the task files with its pending instances, and deletes nothing', async () => {
    const def = define('sch.removed', { cron: '0 * * * *' });
    clock.set(Date.parse('2030-01-01T00:30:00Z'));
    const s = scheduler(schedulesOf(def), 'w');
    await s.tick();
    clock.set(Date.parse('2030-01-01T01:00:00Z'));
    await s.tick();
    const log = recordingLogger();
    clock.set(Date.parse('2030-01-01T02:00:00Z'));
    const newCode = scheduler([], 'w2', log);
    expect(await newCode.tick()).to.deep.equal([]);
    const warn = log.find('warn', /no longer declared/);
    expect(warn).to.have.length(1);
    expect(warn[0]!.fields).to.include({ name: 'sch.removed', key: 'default', pending: 1 });
    expect(await tasksOf('sch.removed')).to.deep.equal(['2030-01-01T01:00:00.000Z']);
    const [{ n }] = (await db.store.knex(db.store.tables.schedules).where('name', 'sch.removed').count({ n: '*' })) as Array<{ n: unknown }>;
    expect(Number(n)).to.equal(1);
  });

  it('a worker whose slots are all busy still enqueues due slots', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    names.push('sch.blocker');
    const blocker = background({ name: 'sch.blocker' }, async function blocker() {
      started = true;
      await gate;
    });
    define('sch.whileBusy', { cron: '0 * * * *' });
    clock.set(Date.parse('2030-01-01T00:30:00Z'));
    await blocker();
    const w = await new Worker({ clock, sleep: 0.05, concurrency: 1, logger: recordingLogger(), names: ['sch.blocker', 'sch.whileBusy'] }).start(db.settings);
    try {
      await waitUntil(() => started, 'the blocker to occupy the only slot');
      // The schedule is registered by the worker's first maintenance pass, at 00:30.
      await waitUntil(
        async () => Number(((await db.store.knex(db.store.tables.schedules).where('name', 'sch.whileBusy').count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n) === 1,
        'the worker to register the schedule',
      );
      clock.set(Date.parse('2030-01-01T01:00:01Z'));
      await waitUntil(async () => (await tasksOf('sch.whileBusy')).length === 1, 'the busy worker to enqueue the slot');
      expect(await tasksOf('sch.whileBusy')).to.deep.equal(['2030-01-01T01:00:00.000Z']);
    } finally {
      release();
      await w.stop(5);
    }
  });

  it('registers declared schedules right after its first claim, not at its next poll', async () => {
    define('sch.prompt', { cron: '0 3 * * *' });
    clock.set(Date.parse('2030-01-01T00:00:00Z'));
    const w = await new Worker({ clock, sleep: 60, logger: recordingLogger(), names: ['sch.prompt'] }).start(db.settings);
    try {
      await waitUntil(
        async () => Number(((await db.store.knex(db.store.tables.schedules).where('name', 'sch.prompt').count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n) === 1,
        'the schedule to be registered long before the 60 s poll',
        5_000,
      );
    } finally {
      await w.stop(0);
    }
  });

  it('leaves the cron schedules of a task stored on another connection to that connection’s workers', async () => {
    define('sch.elsewhere', { cron: '* * * * *', connection: 'reports' });
    clock.set(Date.parse('2030-01-01T00:00:30Z'));
    await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), names: ['sch.elsewhere'] }, db.settings);
    const [{ n }] = (await db.store.knex(db.store.tables.schedules).count({ n: '*' })) as Array<{ n: unknown }>;
    expect(Number(n)).to.equal(0);
  });

  it('a worker enqueues and runs a declared cron task on its own (end to end)', async () => {
    define('sch.e2e', { cron: '0 * * * *', args: [42] });
    clock.set(Date.parse('2030-01-01T00:59:00Z'));
    await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), names: ['sch.e2e'] }, db.settings);
    clock.set(Date.parse('2030-01-01T01:00:02Z'));
    const summary = await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), names: ['sch.e2e'] }, db.settings);
    expect(summary.succeeded).to.equal(1);
    expect(ran).to.deep.equal(['sch.e2e:[42]']);
  });
});

/**
 * The order of a worker's start on every database (worker/worker.ts start(), worker/helpers.ts):
 * the schema is checked before anything is written or claimed; the registry row is written before
 * start() resolves (that is, before the first claim); listening for new tasks starts only after
 * the first claim, and no wake-up is lost to that: a task enqueued while the worker starts runs
 * without waiting for the next poll, and on PostgreSQL the worker does listen once it has claimed.
 */
import { expect } from 'chai';
import { background } from '../../core/index.js';
import { NotMigratedError } from '../../core/errors.js';
import { Worker } from '../../core/worker/worker.js';
import { listWorkers } from '../../core/store/workers.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { recordingLogger } from '../helpers/log.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';

const startupTask = background({ name: 'startup.task' }, function startupTask(n: number) {
  return n;
});

const T0 = Date.UTC(2032, 2, 1, 9);

contract('worker start-up order', (db) => {
  const { clock } = manualClockSuite(db, T0);

  it('on a schema migrated by a newer bgtasks, start() refuses before it registers or claims anything', async () => {
    const ref = await startupTask(1);
    const migrations = db.store.tables.migrations;
    await db.store.knex(migrations).insert({ name: '999_from_a_newer_version', batch: 999, migration_time: new Date() });
    try {
      const w = new Worker({ clock, workerId: 'startup-newer', sleep: 0.05, logger: recordingLogger() });
      let refused: unknown = null;
      await w.start(db.settings).catch((err: unknown) => (refused = err));
      expect(refused).to.be.instanceOf(NotMigratedError);
      expect((refused as Error).message).to.match(/999_from_a_newer_version/);
      expect((await listWorkers(db.store, 0)).map((r) => r.id)).not.to.include('startup-newer');
      const task = await db.store.findPending(ref.id);
      expect(task).to.include({ lockedBy: null, attempts: 0 });
    } finally {
      await db.store.knex(migrations).where('name', '999_from_a_newer_version').del();
    }
  });

  it('a start that fails part-way stops the helpers that had started (the registry row says stopped) before it throws', async () => {
    const queues = db.store.tables.queues;
    const away = `${queues}_away`;
    // The queue limits of the `queues` setting are written at start, beside the registry row: without
    // their table that write fails, after the registration has started its beat.
    await db.store.knex.schema.renameTable(queues, away);
    try {
      const w = new Worker({ clock, workerId: 'startup-broken', sleep: 0.05, logger: recordingLogger() });
      let refused: unknown = null;
      await w.start({ ...db.settings, queues: { mail: { concurrency: 1 } } }).catch((err: unknown) => (refused = err));
      expect(refused, 'start() rejects').to.be.instanceOf(Error);
      const row = (await listWorkers(db.store, 0)).find((r) => r.id === 'startup-broken');
      expect(row, 'the registry row written at start').to.not.equal(undefined);
      expect(row!.stoppedAt, 'the registration was stopped').to.not.equal(null);
    } finally {
      await db.store.knex.schema.renameTable(away, queues);
    }
  });

  it('its registry row is written by the time start() resolves, before the first claim', async () => {
    const w = await new Worker({ clock, workerId: 'startup-row', sleep: 60, logger: recordingLogger() }).start(db.settings);
    try {
      expect((await listWorkers(db.store, 0)).map((r) => r.id)).to.include('startup-row');
    } finally {
      await w.stop(0);
    }
  });

  it('a task enqueued in this process while the worker starts runs without waiting for the poll (60 s)', async () => {
    const w = new Worker({ clock, workerId: 'startup-wake', sleep: 60, logger: recordingLogger() });
    const starting = w.start(db.settings);
    // Enqueued while the worker starts, claims for the first time and subscribes to new tasks.
    const ref = await startupTask(2);
    await starting;
    try {
      await waitUntil(async () => (await db.store.findCompleted(ref.id)) !== null, 'the task to run before the next poll', 10_000);
    } finally {
      await w.stop(0);
    }
  });

  if (db.name === 'postgres') {
    it('on PostgreSQL, it listens once it has claimed: a task another connection inserts runs without waiting for the poll (60 s)', async () => {
      const listening = async () =>
        Number(((await db.store.knex.raw("SELECT count(*) AS n FROM pg_stat_activity WHERE query = ? AND state = 'idle'", [`LISTEN "${db.store.tables.tasks}"`])) as { rows: Array<{ n: unknown }> }).rows[0]!.n) > 0;
      const w = await new Worker({ clock, workerId: 'startup-listen', sleep: 60, logger: recordingLogger() }).start(db.settings);
      try {
        await waitUntil(listening, 'the worker to LISTEN', 10_000);
        // Not through the API: no event in this process, only the insert trigger's NOTIFY.
        const args = JSON.stringify([3]);
        const [id] = await db.store.insertTasks([plainTask({ name: 'startup.task', args, hash: taskHash('startup.task', args), runAt: T0, enqueuedAt: T0 })]);
        await waitUntil(async () => (await db.store.findCompleted(id!)) !== null, 'the task to run before the next poll', 10_000);
      } finally {
        await w.stop(0);
      }
    });
  }
});

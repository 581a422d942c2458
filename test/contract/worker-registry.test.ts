/**
 * The worker registry on every database: a worker writes its row when it starts (what it runs,
 * from which queues, with which limits, until when), refreshes it on its heartbeat timer, writes
 * it again if it was deleted meanwhile, and marks it stopped on a clean stop.
 */
import { expect } from 'chai';
import os from 'node:os';
import { background } from '../../core/index.js';
import { Worker } from '../../core/worker/worker.js';
import { listWorkers } from '../../core/store/workers.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { recordingLogger } from '../helpers/log.js';

background({ name: 'registry.limited', concurrency: 3, concurrencyLimit: 2, rateLimit: { limit: 10, period: 1.5 }, maxAttempts: 4, maxRunTime: 90 }, function limited() {});
background({ name: 'registry.plain' }, function plain() {});

const T0 = Date.UTC(2031, 11, 1, 0);

contract('worker registry', (db) => {
  const { clock } = manualClockSuite(db, T0);
  const row = async (id: string) => (await listWorkers(db.store, 0)).find((w) => w.id === id);

  it('a worker registers when it starts, with its queues, names, limits and concurrency', async () => {
    const w = await new Worker({ clock, workerId: 'reg-1', sleep: 0.05, concurrency: 3, queues: ['a', 'b'], names: ['registry.limited', 'registry.plain'], maxRunTime: 600, logger: recordingLogger() }).start(db.settings);
    try {
      const r = await row('reg-1');
      expect(r).to.deep.include({ host: os.hostname(), pid: process.pid, queues: ['a', 'b'], excludeQueues: null, concurrency: 3, startedAt: T0, heartbeatAt: T0, runUntil: null, stoppedAt: null });
      expect(r!.names).to.deep.equal(['registry.limited', 'registry.plain']);
      expect(r!.limits).to.deep.equal({
        'registry.limited': { concurrency: 3, rateLimit: { limit: 10, period: 1.5 }, concurrencyLimit: 2, maxAttempts: 4, maxRunTime: 90 },
        'registry.plain': { concurrency: null, rateLimit: null, concurrencyLimit: null, maxAttempts: null, maxRunTime: null },
      });
      expect(r!.version).to.match(/^\d+\.\d+\.\d+/);
    } finally {
      await w.stop(0);
    }
  });

  it('refreshes its row on its heartbeat, writes it again when it was deleted, and marks it stopped on a clean stop', async () => {
    const w = await new Worker({ clock, workerId: 'reg-2', sleep: 0.05, lockTimeout: 1, heartbeatInterval: 0.05, duration: 600, grace: 5, logger: recordingLogger() }).start(db.settings);
    try {
      expect((await row('reg-2'))!.runUntil).to.equal(T0 + 605_000);
      clock.advance(7);
      await waitUntil(async () => (await row('reg-2'))?.heartbeatAt === T0 + 7000, 'a heartbeat to refresh the row');
      expect((await row('reg-2'))!.startedAt).to.equal(T0);
      await db.store.knex(db.store.tables.workers).where('id', 'reg-2').del();
      clock.advance(1);
      await waitUntil(async () => (await row('reg-2')) !== undefined, 'the row to be written again');
      expect((await row('reg-2'))!.names.length).to.be.greaterThan(0);
    } finally {
      await w.stop(0);
    }
    const r = await row('reg-2');
    expect(r!.stoppedAt).to.equal(T0 + 8000);
  });

  it('a batch run leaves a stopped row behind', async () => {
    await Worker.drain({ clock, workerId: 'reg-3', sleep: 0.01, logger: recordingLogger() }, db.settings);
    const r = await row('reg-3');
    expect(r!.stoppedAt).to.equal(T0);
  });
});

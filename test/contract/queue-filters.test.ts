/**
 * A worker's queue filters on every database: `queues` runs only the queues it names,
 * `excludeQueues` runs every other queue and the tasks without one.
 */
import { expect } from 'chai';
import { background, schedule } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { taskRows } from '../helpers/stored-rows.js';

const ran: string[] = [];

const queued = background({ name: 'gaps.queued' }, function queued(tag: string) {
  ran.push(tag);
});

const T0 = Date.UTC(2032, 3, 1, 9);

contract('queue filters', (db) => {
  const { drain } = manualClockSuite(db, T0, () => {
    ran.length = 0;
  });
  const pendingRows = () => taskRows(db);

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

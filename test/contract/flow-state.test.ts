/**
 * How often a worker reads the queues table (worker/flow-state.ts): at most once per poll, and,
 * while changes are heard at once (PostgreSQL's notifications, Wakeup.hearing), at most every
 * 5 s whatever the poll; a change it is told of is read before the next claim.
 */
import { expect } from 'chai';
import type { Knex } from 'knex';
import { FlowState } from '../../core/worker/flow-state.js';
import { pauseQueue } from '../../core/store/queues.js';
import { contract } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';

contract('flow state: reading the queues table', (db) => {
  beforeEach(() => db.reset());

  /** Counts the reads of the queues table made through the store while `fn` runs. */
  const countReads = async (fn: () => Promise<void>): Promise<number> => {
    let reads = 0;
    const table = db.store.tables.queues;
    const onQuery = (q: { sql: string }) => {
      if (/^select \*/i.test(q.sql) && q.sql.includes(table)) reads++;
    };
    const knex = db.store.knex as Knex;
    knex.on('query', onQuery);
    try {
      await fn();
    } finally {
      knex.off('query', onQuery);
    }
    return reads;
  };

  const flowState = (hearing: () => boolean) =>
    new FlowState({ store: db.store, names: [], log: recordingLogger(), everyMs: 10, declared: {}, workerId: 'w1', nowMs: () => Date.now(), hearing });

  /** Refreshes like a worker claiming every 5 ms for `ms`. */
  const claimFor = async (f: FlowState, ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      await f.refresh();
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('with a 10 ms poll and nothing heard, reads the table again every poll', async () => {
    const f = flowState(() => false);
    await f.start();
    expect(await countReads(() => claimFor(f, 300))).to.be.at.least(5);
  });

  it('while changes are heard, reads it at most every 5 s; a change it is told of is read before the next claim', async () => {
    const f = flowState(() => true);
    await f.start();
    expect(await countReads(() => claimFor(f, 300)), 'reads in 300 ms of claims').to.equal(0);
    await pauseQueue(db.store, 'mail', 'test', Date.now());
    f.invalidate();
    expect(await countReads(() => f.refresh())).to.equal(1);
    expect([...f.plan.pausedQueues]).to.deep.equal(['mail']);
  });

  it('when hearing stops, the next claim reads the table at its poll again', async () => {
    let hearing = true;
    const f = flowState(() => hearing);
    await f.start();
    await claimFor(f, 50);
    hearing = false;
    expect(await countReads(() => claimFor(f, 300))).to.be.at.least(5);
  });
});

/**
 * The rescheduleExisting dedupe action under concurrency, on every database: calls racing on one
 * hash leave one row, holding the run time and priority of one and the same call.
 */
import { expect } from 'chai';
import { background, schedule } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { taskRows } from '../helpers/stored-rows.js';

const resched = background({ name: 'gaps.resched' }, function resched(_tag: string) {});

const T0 = Date.UTC(2032, 3, 1, 9);

contract('rescheduleExisting', (db) => {
  manualClockSuite(db, T0);
  const pendingRows = () => taskRows(db);

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
});

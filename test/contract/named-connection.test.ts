/**
 * A named connection (the `connections` setting) on every database: a task stored, run and read
 * back through the name while the main database is elsewhere.
 */
import { expect } from 'chai';
import path from 'node:path';
import { background, configure, getResult, schedule } from '../../core/index.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, settingsFor } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const viaName = background({ name: 'gaps.viaName' }, function viaName(n: number) {
  return n * 3;
});

const T0 = Date.UTC(2032, 3, 1, 9);

contract('named connections', (db) => {
  const { clock } = manualClockSuite(db, T0);

  it("stores a task through a named connection to this database, runs it with a worker on that name, and reads the result back", async () => {
    // The main database is elsewhere (an empty, unmigrated SQLite file): only the named
    // connection leads to this database's tables.
    const elsewhereUrl = `sqlite:${path.join(db.dir, 'elsewhere.sqlite3')}`;
    const elsewhere = await settingsFor(elsewhereUrl, db.settings.tablePrefix, db.dir);
    configure({ database: elsewhereUrl, connections: { gaps: db.url } });
    try {
      const ref = await viaName(5, schedule(0, { connection: 'gaps' }));
      expect(await db.store.findPending(ref.id)).to.include({ name: 'gaps.viaName', args: '[5]' });
      const settings = { ...db.settings, database: elsewhere.database, connections: { gaps: db.settings.database } };
      const summary = await Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), connection: 'gaps' }, settings);
      expect(summary.succeeded).to.equal(1);
      const result = await getResult(ref.id, { connection: 'gaps' });
      expect(result).to.include({ status: 'SUCCESSFUL', name: 'gaps.viaName' });
      expect(result.returnValue).to.equal(15);
      expect((await ref.refresh()).returnValue).to.equal(15);
    } finally {
      configure({ database: db.url, connections: {} });
    }
  });
});

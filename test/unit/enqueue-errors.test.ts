/**
 * The enqueue error an application sees when the database cannot be reached (core/api/enqueue-errors.ts):
 * knex's message puts the statement, with the task's arguments inlined, before the driver's words;
 * the wrapped message keeps only the driver's words. (The real outage: test/scenarios/enqueue-outage.test.ts.)
 */
import { expect } from 'chai';
import { enqueueError } from '../../core/api/enqueue-errors.js';
import { resolveSettings } from '../../core/config/settings.js';
import { DatabaseUnavailableError, QueueFullError } from '../../core/errors.js';
import { closeConnections } from '../../core/store/connection.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import type { Store } from '../../core/store/store.js';

describe('enqueue errors during an outage', () => {
  let store: Store;
  before(async () => {
    // No connection is opened: knex connects on the first query, and none is made here.
    store = await storeFor(await resolveSettings({ env: {}, overrides: { database: 'mysql://app:hunter2@db.example:3306/jobs', tablePrefix: 'u_' } }));
  });
  after(async () => {
    forgetStores();
    await closeConnections();
  });

  it("keeps the driver's words after knex's statement, names the task and the masked database, and keeps the driver error as cause", () => {
    const driver = Object.assign(new Error("insert into `u_tasks` (`args`, `name`) values ('[\"card-4111\"]', 'billing.charge') - read ECONNRESET"), { code: 'ECONNRESET' });
    const e = enqueueError(store, 'billing.charge', driver) as DatabaseUnavailableError;
    expect(e).to.be.instanceOf(DatabaseUnavailableError);
    expect(e.message).to.equal('Cannot enqueue billing.charge: the database mysql://app:***@db.example:3306/jobs is unavailable: read ECONNRESET');
    expect(e.cause).to.equal(driver);
  });

  it('adds the driver code when its words do not say it', () => {
    const driver = Object.assign(new Error('select 1 - Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST' });
    expect((enqueueError(store, 'x', driver) as Error).message).to.match(/is unavailable: Connection lost: The server closed the connection\. \(PROTOCOL_CONNECTION_LOST\)$/);
  });

  it('leaves every other error as it is', () => {
    const full = new QueueFullError('queue "mail" is full');
    expect(enqueueError(store, 'x', full)).to.equal(full);
    const dup = Object.assign(new Error("insert … - Duplicate entry 'k' for key 'uniq'"), { code: 'ER_DUP_ENTRY', errno: 1062 });
    expect(enqueueError(store, 'x', dup)).to.equal(dup);
  });
});

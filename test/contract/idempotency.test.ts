/**
 * Idempotency keys on every database (IDEMPOTENT-01 in docs/scenarios.md): an enqueue with a key
 * that a stored task holds, pending or finished with its result kept, gets that task instead of a
 * twin, also when the calls race and in bulk; another call under a taken key is refused and
 * stores nothing; the key is free again once the result is pruned.
 */
import { expect } from 'chai';
import { background, getResult, idempotencyKey, schedule, ValidationError } from '../../core/index.js';
import { pruneResults } from '../../core/store/prune.js';
import knexFactory, { type Knex } from 'knex';
import { contract, settingsFor } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { countRows, taskRows } from '../helpers/stored-rows.js';

const charge = background({ name: 'idem.charge' }, function charge(orderId: number) {
  return `charged ${orderId}`;
});
const refund = background({ name: 'idem.refund' }, function refund(_orderId: number) {});

const T0 = Date.UTC(2033, 0, 10, 12);
const DAY = 86_400_000;

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

contract('idempotency keys', (db) => {
  const { clock, drain } = manualClockSuite(db, T0);
  const keyed = async (key: string) => (await taskRows(db)).filter((r) => r.idempotency_key === key);

  it('the same key twice stores one task: the second call gets its id, run time and outcome "existing"', async () => {
    const first = await charge(42, schedule(60, { idempotencyKey: 'charge:order-42' }));
    clock.advance(5_000);
    const again = await charge(42, idempotencyKey('charge:order-42'));
    expect(first.outcome).to.equal('created');
    expect(again).to.include({ id: first.id, outcome: 'existing' });
    expect(again.runAt.getTime(), 'the stored run time, not the retry\'s').to.equal(T0 + 60_000);
    expect(await keyed('charge:order-42')).to.have.length(1);
    // Another key is another task, even for the same call.
    expect((await charge(42, idempotencyKey('charge:order-42:second'))).outcome).to.equal('created');
    expect(await countRows(db, db.store.tables.tasks)).to.equal(2);
  });

  it('12 concurrent enqueues with one key store one task, and all get its id (3 rounds)', async () => {
    for (const round of [1, 2, 3]) {
      const key = `race-${round}`;
      const refs = await Promise.all(Array.from({ length: 12 }, () => charge(round, idempotencyKey(key))));
      const rows = await keyed(key);
      expect(rows, key).to.have.length(1);
      expect(refs.filter((r) => r.outcome === 'created'), key).to.have.length(1);
      expect(new Set(refs.map((r) => r.id)), key).to.deep.equal(new Set([String(rows[0]!.id)]));
    }
  });

  it('a finished task keeps its key while its result is kept: the retry gets the result, and a new task only after the prune', async () => {
    const ref = await charge(7, idempotencyKey('charge:7'));
    await drain();
    expect(await countRows(db, db.store.tables.tasks)).to.equal(0);
    const again = await charge(7, idempotencyKey('charge:7'));
    expect(again).to.include({ id: ref.id, outcome: 'existing' });
    expect((await getResult(again)).returnValue).to.equal('charged 7');
    expect(await countRows(db, db.store.tables.tasks), 'nothing to run again').to.equal(0);

    clock.advance(31 * DAY);
    await pruneResults(db.store, { days: 30, nowMs: clock.now() });
    const later = await charge(7, idempotencyKey('charge:7'));
    expect(later.outcome).to.equal('created');
    expect(later.id).to.not.equal(ref.id);
  });

  it('another call under a taken key is refused, naming the key and the task that holds it, and stores nothing', async () => {
    const held = await charge(1, idempotencyKey('shared'));
    const otherArgs = await rejects(charge(2, idempotencyKey('shared')));
    expect(otherArgs).to.be.instanceOf(ValidationError);
    expect(otherArgs.message).to.equal(
      `idempotencyKey "shared" already belongs to task idem.charge with other arguments (#${held.id}); this call of idem.charge was not stored — give each operation a key of its own`,
    );
    const otherTask = await rejects(refund(1, idempotencyKey('shared')));
    expect(otherTask.message).to.match(/^idempotencyKey "shared" already belongs to task idem\.charge \(#\d+\); this call of idem\.refund was not stored/);
    expect(await countRows(db, db.store.tables.tasks)).to.equal(1);
  });

  it('bulk: a key per call from a function; a repeated bulk stores nothing new, a key taken twice in one bulk is one task', async () => {
    const key = (orderId: number) => `bulk:${orderId}`;
    const first = await charge.bulk([[1], [2], [2]], { idempotencyKey: key });
    expect(first.map((r) => r.outcome)).to.deep.equal(['created', 'created', 'existing']);
    expect(first[2]!.id).to.equal(first[1]!.id);
    const again = await charge.bulk([[3], [2], [1]], { idempotencyKey: key });
    expect(again.map((r) => r.outcome)).to.deep.equal(['created', 'existing', 'existing']);
    expect(again[1]!.id).to.equal(first[1]!.id);
    expect(again[2]!.id).to.equal(first[0]!.id);
    expect((await taskRows(db)).map((r) => r.idempotency_key)).to.deep.equal(['bulk:1', 'bulk:2', 'bulk:3']);
    // All or nothing: a conflict anywhere stores none of the bulk.
    const conflict = await rejects(charge.bulk([[4], [5]], { idempotencyKey: () => 'bulk:1' }));
    expect(conflict.message).to.match(/^idempotencyKey "bulk:1" already belongs to task idem\.charge with other arguments/);
    expect(await countRows(db, db.store.tables.tasks)).to.equal(3);
  });

  it('refuses a bad key with an error naming it, before anything is stored', async () => {
    const long = 'k'.repeat(191);
    const cases: Array<[() => unknown, RegExp]> = [
      [() => idempotencyKey(''), /^Invalid idempotencyKey\(key\): "" — expected a non-empty string of at most 190 characters$/],
      [() => schedule(0, { idempotencyKey: long }), /^Invalid idempotencyKey in schedule\(\) options: "k{80}…" \(191 characters\) — expected a non-empty string of at most 190 characters$/],
      [() => schedule(0, { idempotencyKey: 42 as unknown as string }), /^Invalid idempotencyKey in schedule\(\) options: 42 — expected a non-empty string/],
      [() => idempotencyKey('a\u0000b'), /^Invalid idempotencyKey\(key\): "a\\u0000b" — expected text without the NUL character/],
    ];
    for (const [make, message] of cases) {
      let err: unknown;
      try {
        make();
      } catch (e) {
        err = e;
      }
      expect(err, String(message)).to.be.instanceOf(ValidationError);
      expect((err as Error).message).to.match(message);
    }
    const stringInBulk = await rejects(charge.bulk([[1]], { idempotencyKey: 'one' as unknown as () => string }));
    expect(stringInBulk.message).to.match(/^Invalid idempotencyKey in idem\.charge\.bulk\(\) options: "one" — expected a function of each call's arguments/);
    const emptyFromFunction = await rejects(charge.bulk([[1], [2]], { idempotencyKey: (n) => (n === 2 ? '' : 'ok') }));
    expect(emptyFromFunction.message).to.match(/^idem\.charge\.bulk\(\): call 2: Invalid idempotencyKey \(what its function returned\): "" — expected/);
    expect(await countRows(db, db.store.tables.tasks)).to.equal(0);
  });

  it('a successor of a repeating task does not inherit the key: the key names the first run', async () => {
    const ref = await charge(9, schedule(0, { idempotencyKey: 'repeating', repeat: 3600 }));
    await drain();
    const rows = await taskRows(db);
    expect(rows, 'the successor').to.have.length(1);
    expect(rows[0]!.idempotency_key).to.equal(null);
    expect((await charge(9, idempotencyKey('repeating'))).id).to.equal(ref.id);
  });
  if (db.name !== 'sqlite') {
    // SQLite has one writer: an application transaction that has read cannot write after another
    // connection's commit at all (SQLITE_BUSY_SNAPSHOT), key or no key.
    it('inside the application\'s transaction, whose snapshot predates another enqueue of the key: gets that task ("existing"), not a duplicate-key error', async () => {
      const s = await settingsFor(db.url, db.settings.tablePrefix, db.dir);
      const appKnex: Knex = knexFactory({ ...(s.database.config as Knex.Config), pool: { min: 0, max: 1 } });
      try {
        let first = '';
        const inside = await appKnex.transaction(async (trx) => {
          // The application's transaction reads first: on MySQL/MariaDB (REPEATABLE READ) that
          // fixes its snapshot.
          await trx(db.store.tables.tasks).count({ n: '*' });
          first = (await charge(5, idempotencyKey('in-app-trx'))).id;
          return charge(5, schedule(0, { idempotencyKey: 'in-app-trx', db: trx }));
        });
        expect(inside).to.include({ id: first, outcome: 'existing' });
        expect(await keyed('in-app-trx')).to.have.length(1);
      } finally {
        await appKnex.destroy();
      }
    });
  }
});

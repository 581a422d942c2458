/**
 * PostgreSQL's wake-up listener (worker/wakeup.ts): its first LISTEN checks that a notification
 * sent through the store's own connections arrives; with `listenUrl` it listens on a private
 * direct connection, which stop() closes. (Through PgBouncer in transaction mode the test
 * notification never arrives: test/scenarios/pgbouncer.test.ts, PGBOUNCER-02.) A LISTEN whose
 * connection is lost before it is answered gives that connection back to its pool.
 */
import { expect } from 'chai';
import knexFactory from 'knex';
import { parseDatabase } from '../../core/config/database-spec.js';
import { Wakeup } from '../../core/worker/wakeup.js';
import { closeConnection, connectPrivate, DEFAULT_TIMEOUTS } from '../../core/store/connection.js';
import { Store } from '../../core/store/store.js';
import { contract, waitUntil } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { TcpProxy, throughProxy } from '../helpers/tcp-proxy.js';
import { settles } from '../helpers/teardown.js';

contract('wake-up listener', (db) => {
  if (db.name !== 'postgres') return;
  beforeEach(() => db.reset());

  const listeners = async () =>
    // Only this suite's channel: other suites may listen on the same server.
    Number(((await db.store.knex.raw("SELECT count(*) AS n FROM pg_stat_activity WHERE query = ? AND state = 'idle'", [`LISTEN "${db.store.tables.tasks}"`])) as { rows: Array<{ n: unknown }> }).rows[0]!.n);

  /** A private connection to the database through a TCP proxy the test can cut. */
  const proxiedConnection = async () => {
    const u = new URL(db.url);
    const proxy = new TcpProxy(u.hostname, Number(u.port));
    await proxy.start();
    const conn = await connectPrivate(parseDatabase(throughProxy(db.url, proxy.port), db.dir, 'database'), DEFAULT_TIMEOUTS);
    return { proxy, conn };
  };

  it('the first LISTEN hears its own test notification on a direct connection, and says nothing', async () => {
    const log = recordingLogger();
    let wakes = 0;
    const w = new Wakeup(db.store, () => wakes++, log, undefined, undefined, { selfTestMs: 5000, sleepMs: 5000 });
    await w.start();
    try {
      await waitUntil(() => w.delivery !== 'pending', 'the self-test to end', 10_000);
      expect(w.delivery).to.equal('arrived');
      expect(wakes, 'a test notification wakes nobody').to.equal(0);
      expect(log.find('warn', /notifications do not arrive/)).to.deep.equal([]);
    } finally {
      await w.stop();
    }
  });

  it('with listenUrl, listens on a connection of its own (woken by an insert from another connection) and closes it on stop', async () => {
    const before = await listeners();
    let wakes = 0;
    const w = new Wakeup(db.store, () => wakes++, recordingLogger(), undefined, undefined, { listenUrl: parseDatabase(db.url, db.dir, 'listenUrl'), sleepMs: 5000 });
    await w.start();
    const other = knexFactory({ client: 'pg', connection: { connectionString: db.url } });
    try {
      await waitUntil(() => w.delivery !== 'pending', 'the self-test to end', 10_000);
      expect(w.delivery).to.equal('arrived');
      expect(await listeners()).to.equal(before + 1);
      await other.raw('SELECT pg_notify(?, ?)', [db.store.tables.tasks, '']);
      await waitUntil(() => wakes === 1, 'the listener to wake the worker', 5_000);
    } finally {
      await other.destroy();
      await w.stop();
    }
    await waitUntil(async () => (await listeners()) === before, 'the private LISTEN connection to close', 5_000);
  });

  it('hears while its LISTEN is up and its self-test arrived; a lost connection and a new LISTEN each say the queues may have changed', async function () {
    this.timeout(30_000);
    const { proxy, conn } = await proxiedConnection();
    let queuesChanged = 0;
    const w = new Wakeup(new Store(conn, db.settings.tablePrefix), () => {}, recordingLogger(), () => queuesChanged++, undefined, { sleepMs: 5000 });
    try {
      expect(w.hearing, 'before it listens').to.equal(false);
      await w.start();
      await waitUntil(() => w.delivery !== 'pending', 'the self-test to end', 10_000);
      expect(w.hearing).to.equal(true);
      proxy.cut();
      await waitUntil(() => !w.hearing, 'the lost LISTEN connection to be noticed', 10_000);
      expect(queuesChanged, 'once the connection is lost').to.equal(1);
      proxy.restore();
      // It listens again after a pause (5 s).
      await waitUntil(() => w.hearing, 'the worker to listen again', 20_000);
      expect(queuesChanged, 'again once it listens again: changes notified meanwhile were missed').to.equal(2);
    } finally {
      await w.stop();
      await settles(closeConnection(conn), 10_000);
      await proxy.stop();
    }
  });

  it('a LISTEN whose connection is lost before its answer gives the connection back: nothing stays in use and the pool closes', async function () {
    this.timeout(30_000);
    const { proxy, conn } = await proxiedConnection();
    const inUse = () => (conn.knex.client as { pool: { numUsed(): number } }).pool.numUsed();
    const log = recordingLogger();
    const w = new Wakeup(new Store(conn, db.settings.tablePrefix), () => {}, log, undefined, undefined, { sleepMs: 5000 });
    try {
      // The LISTEN reaches the server; its answer never comes back, and then the network is cut.
      proxy.blackHoleAfter(/LISTEN/);
      const started = w.start();
      await waitUntil(() => proxy.blackHoling, 'the LISTEN to go through');
      proxy.cut();
      await started;
      expect(log.find('warn', /cannot listen for new tasks/)).to.have.length(1);
      expect(inUse(), 'connections still in use after the failed LISTEN').to.equal(0);
      await w.stop();
      expect(await settles(closeConnection(conn), 10_000), 'the pool closes').to.equal(true);
    } finally {
      await w.stop();
      await settles(closeConnection(conn), 10_000);
      await proxy.stop();
    }
  });
});

/**
 * Scenario TIMEOUT-01 (docs/scenarios.md): enqueues over a connection whose packets are dropped,
 * on the shared MariaDB and PostgreSQL servers reached through a TCP proxy that black-holes the
 * traffic (the servers themselves are never touched). With a 1 s connectTimeout and a 2 s
 * statementTimeout, an enqueue on a pooled connection fails within the statement timeout, one that
 * needs a new connection within the connect timeout, each with a DatabaseUnavailableError; and an
 * enqueue whose COMMIT reached the server but whose answer was lost (it failed, yet it was stored)
 * retried with the same idempotency key after the outage gets the stored task: no twin.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { background, DatabaseUnavailableError, idempotencyKey } from '../../core/index.js';
import { configure, resetConfiguration } from '../../core/config/settings.js';
import { closeConnection, closeConnections, connectPrivate } from '../../core/store/connection.js';
import { isStatementTimeout } from '../../core/store/dialects/timeouts.js';
import { rollbackMigrations, runMigrations } from '../../core/store/migrate.js';
import { forgetStores } from '../../core/store/open.js';
import { Store } from '../../core/store/store.js';
import { serverUrl, settingsFor, uniquePrefix } from '../helpers/databases.js';
import { TcpProxy, throughProxy } from '../helpers/tcp-proxy.js';

const CONNECT_TIMEOUT = 1;
const STATEMENT_TIMEOUT = 2;
/** What a test run may add to a bound: timers, the event loop of a loaded 2-core machine. */
const SLACK_MS = 1500;

const order = background({ name: 'timeouts.order' }, function order(_id: number) {});

/** How long `fn` took to reject, and with what (fails the test if it resolves). */
async function rejection(fn: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = Date.now();
  try {
    await fn();
  } catch (err) {
    return { err, ms: Date.now() - started };
  }
  throw new Error('the enqueue succeeded through the black hole');
}

for (const name of ['mysql', 'postgres'] as const) {
  describe(`TIMEOUT-01 through a black-holing proxy [${name}]`, function () {
    this.timeout(60_000);
    const url = serverUrl(name);
    let proxy: TcpProxy | undefined;
    let direct: Store | undefined;
    let dir: string | undefined;
    let prefix = '';

    before(async function () {
      if (!url) {
        process.stdout.write(`      NOTICE: no ${name} server URL is set: TIMEOUT-01 on ${name} is skipped (not counted as passed).\n`);
        this.skip();
      }
      dir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-timeouts-'));
      prefix = uniquePrefix();
      // The test's own view of the tables, not through the proxy, on a connection of its own
      // (the test closes the application's connections).
      direct = new Store(await connectPrivate((await settingsFor(url!, prefix, dir)).database), prefix);
      await runMigrations(direct.conn, prefix);
      const u = new URL(url!);
      proxy = new TcpProxy(u.hostname, Number(u.port || (name === 'mysql' ? 3306 : 5432)));
      await proxy.start();
      configure({ database: throughProxy(url!, proxy.port), tablePrefix: prefix, connectTimeout: CONNECT_TIMEOUT, statementTimeout: STATEMENT_TIMEOUT });
    });
    after(async function () {
      proxy?.restore();
      resetConfiguration();
      forgetStores();
      await closeConnections();
      if (direct) {
        await rollbackMigrations(direct.conn, prefix).catch(() => {});
        await closeConnection(direct.conn);
      }
      await proxy?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    afterEach(() => proxy?.restore());

    const keyed = async (key: string) => (await direct!.knex(direct!.tables.tasks).where('idempotency_key', key).select('id')).map((r: { id: unknown }) => String(r.id));

    it('TIMEOUT-01: an enqueue over a pooled connection whose packets are dropped fails within statementTimeout, one that must connect within connectTimeout; both work again after the outage', async () => {
      expect((await order(1)).outcome).to.equal('created');
      proxy!.blackHole();

      const pooled = await rejection(() => order(2));
      process.stdout.write(`      ${name}, pooled connection: ${(pooled.err as Error).message} (${pooled.ms} ms)\n`);
      expect(pooled.err, String(pooled.err)).to.be.instanceOf(DatabaseUnavailableError);
      expect((pooled.err as Error).message).to.match(/^Cannot enqueue timeouts\.order: the database \S+ is unavailable: no answer from 127\.0\.0\.1:\d+ within 2 s \(the statementTimeout setting\)/);
      expect((pooled.err as Error).message).to.match(/it may have been stored all the same: retry with the same idempotencyKey/);
      expect(pooled.ms, 'the statement timeout, not an earlier failure').to.be.at.least(STATEMENT_TIMEOUT * 1000 - 50);
      expect(pooled.ms, 'never a hang').to.be.below(STATEMENT_TIMEOUT * 1000 + SLACK_MS);

      // The timed-out connection was closed, not put back: a fresh pool must connect, and cannot.
      forgetStores();
      await closeConnections();
      const fresh = await rejection(() => order(3));
      process.stdout.write(`      ${name}, new connection: ${(fresh.err as Error).message} (${fresh.ms} ms)\n`);
      expect(fresh.err, String(fresh.err)).to.be.instanceOf(DatabaseUnavailableError);
      expect((fresh.err as Error).message).to.match(/^Cannot enqueue timeouts\.order: the database \S+ is unavailable: no answer from 127\.0\.0\.1:\d+ (within the connectTimeout setting|\(ETIMEDOUT\))/);
      expect(fresh.ms, 'the connect timeout').to.be.at.least(CONNECT_TIMEOUT * 1000 - 50);
      expect(fresh.ms, 'never a hang').to.be.below(CONNECT_TIMEOUT * 1000 + 500 + SLACK_MS);

      proxy!.restore();
      expect((await order(4)).outcome).to.equal('created');
      const stored = (await direct!.knex(direct!.tables.tasks).where('name', 'timeouts.order').select('args')).map((r: { args: string }) => r.args).sort();
      expect(stored, 'the two failed enqueues stored nothing').to.deep.equal(['[1]', '[4]']);
    });

    it('a statement answered within statementTimeout clears its bound: statements each shorter than the bound, together longer, all succeed on one connection; a longer one fails', async () => {
      // Straight to the server, one connection, a 1 s bound. Were a statement's timer left running
      // once answered, it would close the connection under the second or third sleep.
      const spec = (await settingsFor(url!, prefix, dir!)).database;
      const one = await connectPrivate({ ...spec, config: { ...spec.config, pool: { min: 0, max: 1 } } }, { connectMs: 2000, statementMs: 1000 });
      try {
        const sleep = name === 'mysql' ? 'SELECT SLEEP(0.4) AS s' : 'SELECT pg_sleep(0.4) AS s';
        for (let i = 0; i < 3; i++) await one.knex.raw(sleep);
        await one.knex.transaction(async (trx) => {
          await trx.raw(sleep);
          await trx.raw(sleep);
          await trx.raw(sleep);
        });
        const err = await one.knex.raw(name === 'mysql' ? 'SELECT SLEEP(3) AS s' : 'SELECT pg_sleep(3) AS s').then(
          () => null,
          (e: unknown) => e,
        );
        expect(isStatementTimeout(err), `the bound is on: ${String(err)}`).to.equal(true);
      } finally {
        await closeConnection(one);
      }
    });

    it('TIMEOUT-01: an enqueue whose COMMIT reached the server but whose answer was lost fails, yet is stored; retried with its idempotency key after the outage, it gets that task, not a twin', async () => {
      const key = `order-42-${name}`;
      proxy!.blackHoleAfter(/COMMIT/i);
      const lost = await rejection(() => order(42, idempotencyKey(key)));
      expect(lost.err, String(lost.err)).to.be.instanceOf(DatabaseUnavailableError);
      expect((lost.err as Error).message).to.match(/within 2 s \(the statementTimeout setting\).*it may have been stored/);
      expect(lost.ms).to.be.below(STATEMENT_TIMEOUT * 1000 + SLACK_MS);
      const [storedId] = await keyed(key);
      expect(storedId, 'the failed enqueue was committed all the same').to.be.a('string');

      proxy!.restore();
      const retried = await order(42, idempotencyKey(key));
      expect(retried).to.include({ id: storedId, outcome: 'existing' });
      expect(await keyed(key), 'no twin').to.deep.equal([storedId]);
    });
  });
}

/**
 * Scenario OUTAGE-01 (docs/scenarios.md): what an application sees when it enqueues while the
 * database server is down, on private PostgreSQL and MariaDB servers that the test stops: a
 * DatabaseUnavailableError naming the task and the database (password masked) and the cause,
 * never the statement or the task's arguments, with the driver's error as `cause`; and the next
 * enqueue after the server's return succeeds. Skipped with a printed notice where the server
 * binaries are missing.
 */
import { expect } from 'chai';
import { background, BgtasksError, DatabaseUnavailableError } from '../../core/index.js';
import { configure, resetConfiguration, resolveSettings } from '../../core/config/settings.js';
import { closeConnections } from '../../core/store/connection.js';
import { runMigrations } from '../../core/store/migrate.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { leftovers, mariadbAvailable, postgresAvailable, skipUnless, startPrivateMariadb, startPrivatePostgres } from '../helpers/private-servers.js';

const PREFIX = 'eo_';
const SECRET = 'card-4111-1111';
const task = background({ name: 'outage.task' }, function outageTask(_who: string) {});

const TARGETS = [
  { name: 'postgres', available: postgresAvailable, start: startPrivatePostgres, driverClass: /^(Error|DatabaseError)$/ },
  { name: 'mariadb', available: mariadbAvailable, start: startPrivateMariadb, driverClass: /^Error$/ },
] as const;

for (const target of TARGETS) {
  describe(`enqueue during an outage [${target.name}]`, function () {
    this.timeout(90_000);
    let server: { url: string; stop(): Promise<void>; start(): Promise<void>; destroy(): Promise<void> } | undefined;

    before(async function () {
      this.timeout(90_000);
      skipUnless(this, target.available(), `OUTAGE-01 on ${target.name}`);
      server = await target.start();
      const settings = await resolveSettings({ env: {}, overrides: { database: server.url, tablePrefix: PREFIX } });
      const store = await storeFor(settings);
      await runMigrations(store.conn, PREFIX);
      configure({ database: server.url, tablePrefix: PREFIX });
    });
    after(async function () {
      this.timeout(60_000);
      resetConfiguration();
      forgetStores();
      await closeConnections();
      await server?.destroy();
      expect(leftovers()).to.deep.equal([]);
    });

    it('OUTAGE-01: an enqueue while the server is down fails fast with a DatabaseUnavailableError without the statement or the arguments; the next one after its return succeeds', async () => {
      expect((await task(SECRET)).outcome).to.equal('created');
      await server!.stop();
      const failures: unknown[] = [];
      const started = Date.now();
      for (const attempt of [() => task(SECRET), () => task.bulk([[SECRET], [SECRET]])]) {
        try {
          await attempt();
          expect.fail('the enqueue succeeded while the server was down');
        } catch (err) {
          failures.push(err);
        }
      }
      const tookMs = Date.now() - started;
      process.stdout.write(`      ${target.name}: ${(failures[0] as Error).message} (two enqueues failed in ${tookMs} ms)\n`);
      for (const [i, err] of failures.entries()) {
        expect(err, String(err)).to.be.instanceOf(DatabaseUnavailableError);
        const e = err as DatabaseUnavailableError;
        const what = i === 0 ? 'outage\\.task' : '2 calls of outage\\.task';
        expect(e.message).to.match(new RegExp(`^Cannot enqueue ${what}: the database (postgres|mysql)://\\w+@127\\.0\\.0\\.1:\\d+/test is unavailable: \\S`));
        expect(e.message).to.not.contain(SECRET);
        expect(e.message).to.not.match(/insert into/i);
        expect(e.cause, 'the driver error as cause').to.be.instanceOf(Error);
        expect(e.cause).to.not.be.instanceOf(BgtasksError);
      }
      expect(tookMs, 'never a hang').to.be.lessThan(15_000);
      await server!.start();
      expect((await task(SECRET)).outcome).to.equal('created');
    });
  });
}

/**
 * Scenario POOL-01 (docs/scenarios.md), on every database: an application gives bgtasks its own
 * knex, with a small pool (1 connection on SQLite, 2 on MariaDB, 3 on PostgreSQL, whose worker
 * keeps one for LISTEN) and a 1 s acquireConnectionTimeout, and runs a worker in the same process
 * on it. The application then holds every other connection of the pool in open transactions
 * while a task runs. Its enqueue must
 * wait no longer than acquireConnectionTimeout and fail with a DatabaseUnavailableError that says
 * the pool is exhausted; the worker must keep running, keep the result it cannot write, and
 * resume once the transactions end; nothing is lost and nothing runs twice.
 */
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { background, configure, DatabaseUnavailableError, getResult } from '../../core/index.js';
import { resolveSettings } from '../../core/config/settings.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, waitUntil, type TestDatabase } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';

const ACQUIRE_MS = 1_000;
const SLOW = 1_000;

const runs = new Map<number, number>();
let openSlow: () => void = () => {};
let slowGate = Promise.resolve();

const poolTask = background({ name: 'pool.task' }, async function poolTask(n: number) {
  runs.set(n, (runs.get(n) ?? 0) + 1);
  if (n === SLOW) await slowGate;
  return n;
});

/** The application's own knex on the suite's database, with a pool of `max` connections. */
function appKnex(db: TestDatabase, max: number): Knex {
  // knex logs each failed acquire with its stack to the console; an application has its own logger.
  const quiet = () => {};
  const common = { acquireConnectionTimeout: ACQUIRE_MS, pool: { min: 0, max }, log: { warn: quiet, error: quiet, debug: quiet, deprecate: quiet } };
  if (db.name === 'sqlite') return knexFactory({ client: 'sqlite3', connection: { filename: db.url.slice('sqlite:'.length) }, useNullAsDefault: true, ...common });
  if (db.name === 'postgres') return knexFactory({ client: 'pg', connection: db.url, ...common });
  const u = new URL(db.url);
  const connection = { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username || 'root'), password: decodeURIComponent(u.password), database: u.pathname.slice(1), charset: 'utf8mb4' };
  return knexFactory({ client: 'mysql2', connection, ...common });
}

contract('POOL-01: the pool exhausted by the application’s transactions', (db) => {
  it('POOL-01: an enqueue fails within acquireConnectionTimeout saying the pool is exhausted; the worker keeps running, keeps its result, and resumes; nothing lost or run twice', async function () {
    this.timeout(40_000);
    await db.reset();
    runs.clear();
    slowGate = new Promise<void>((r) => (openSlow = r));
    // On PostgreSQL the worker holds one connection of the pool for LISTEN all along.
    const max = db.name === 'sqlite' ? 1 : db.name === 'postgres' ? 3 : 2;
    const appHolds = db.name === 'postgres' ? max - 1 : max;
    const app = appKnex(db, max);
    const prefix = db.settings.tablePrefix;
    const completed = async () => Number(((await db.store.knex(db.store.tables.completed).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
    const held: Knex.Transaction[] = [];
    const log = recordingLogger();
    let worker: Worker | null = null;
    let workerEnded = false;
    try {
      configure({ database: app, tablePrefix: prefix });
      const settings = await resolveSettings({ env: {}, overrides: { database: app, tablePrefix: prefix } });
      worker = await new Worker({ names: ['pool.task'], concurrency: 2, sleep: 0.2, lockTimeout: 10, logger: log, workerId: 'pool-worker' }).start(settings);
      void worker.done.then(() => (workerEnded = true));

      // On a pool this small, bgtasks alone works.
      const refs = [];
      for (let n = 0; n < 10; n++) refs.push(await poolTask(n));
      await waitUntil(async () => (await completed()) === 10, 'ten tasks to finish on the small pool', 10_000, 50);
      const slow = await poolTask(SLOW);
      await waitUntil(() => runs.get(SLOW) === 1, 'the slow task to start', 5_000);

      // The application holds every connection of the pool.
      for (let i = 0; i < appHolds; i++) {
        const trx = await app.transaction();
        await trx.raw('SELECT 1');
        held.push(trx);
      }
      const exhaustedAt = Date.now();
      openSlow();
      let failure: unknown = null;
      try {
        await poolTask(99);
      } catch (err) {
        failure = err;
      }
      const waitedMs = Date.now() - exhaustedAt;
      process.stdout.write(`      ${db.name}: the enqueue failed after ${waitedMs} ms: ${(failure as Error | null)?.message}\n`);
      expect(failure, 'the enqueue while the pool is exhausted').to.be.instanceOf(DatabaseUnavailableError);
      expect((failure as Error).message).to.match(
        new RegExp(`^Cannot enqueue pool\\.task: the database the application's knex instance \\(\\w+\\) is unavailable: (its pool's only connection|all ${max} connections of its pool) stayed in use for 1 s \\(knex's acquireConnectionTimeout\\)`),
      );
      expect(waitedMs, 'it waited out acquireConnectionTimeout, and no more').to.be.within(ACQUIRE_MS - 100, ACQUIRE_MS + 1_500);

      await waitUntil(() => log.find('warn', /^database unreachable/).length > 0, 'the worker to notice', 5_000);
      const noticedMs = Date.now() - exhaustedAt;
      process.stdout.write(`      ${db.name}: the worker noticed after ${noticedMs} ms\n`);
      // Its claims wait out the same timeout, and no more (a poll every 0.2 s).
      expect(noticedMs).to.be.below(ACQUIRE_MS + 2_000);
      const notice = log.find('warn', /^database unreachable/)[0]!;
      expect(String(notice.fields.error)).to.match(/stayed in use for 1 s \(knex's acquireConnectionTimeout\)/);
      // The slow task's result waits in the worker: nothing written, the worker still running.
      expect(await completed()).to.equal(10);
      expect(workerEnded, 'the worker still runs').to.equal(false);
      expect(log.find('error', /./), 'no error line').to.deep.equal([]);

      for (const trx of held.splice(0)) await trx.commit();
      const releasedAt = Date.now();
      for (let n = 10; n < 15; n++) refs.push(await poolTask(n));
      await waitUntil(async () => (await completed()) === 16, 'every task to finish once the transactions ended', 15_000, 50);
      process.stdout.write(`      ${db.name}: everything finished ${Date.now() - releasedAt} ms after the transactions ended\n`);
      expect(log.find('warn', /^database reachable again/)).to.have.length(1);

      for (const ref of [...refs, slow]) {
        const r = await getResult(ref.id);
        expect([ref.id, r.status, r.attempts]).to.deep.equal([ref.id, 'SUCCESSFUL', 1]);
      }
      for (const n of [...Array(15).keys(), SLOW]) expect(runs.get(n), `runs of ${n}`).to.equal(1);
      expect(runs.has(99), 'the failed enqueue stored nothing').to.equal(false);
      const [{ n: stored }] = (await db.store.knex(db.store.tables.tasks).count({ n: '*' })) as Array<{ n: unknown }>;
      expect(Number(stored)).to.equal(0);
      expect(workerEnded).to.equal(false);
      const summary = await worker.stop(5);
      worker = null;
      expect(summary.reason).to.equal('stopped');
    } finally {
      openSlow();
      for (const trx of held) await trx.rollback().catch(() => {});
      await worker?.stop(5);
      configure({ database: db.url, tablePrefix: prefix });
      await app.destroy();
    }
  });
});

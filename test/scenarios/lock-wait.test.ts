/**
 * Scenario LOCKWAIT-01 (docs/scenarios.md), on MariaDB and PostgreSQL: another session holds locks
 * on the task table beside a running worker whose connections have short lock-wait timeouts
 * (MariaDB's innodb_lock_wait_timeout and lock_wait_timeout, PostgreSQL's lock_timeout, set by the
 * pool's afterCreate as an application would). Row locks on ready tasks: the worker claims the
 * other tasks (SKIP LOCKED) without waiting. A row lock on a running task: its result waits, the
 * lock-wait timeouts are retried, and it is recorded once the lock goes. A table lock longer than
 * the store's retries: the worker reports the database busy, waits it out and resumes. Nothing is
 * lost, nothing runs twice. SQLite has one writer and no row locks: a held write lock is SQLITE-01.
 */
import { expect } from 'chai';
import type { Knex } from 'knex';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { background, getResult, schedule } from '../../core/index.js';
import { resolveSettings } from '../../core/config/settings.js';
import { Worker } from '../../core/worker/worker.js';
import { contract, waitUntil, type TestDatabase } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';

const GATED = 500;
const ROW_LOCK_MS = 2_500;
const TABLE_LOCK_MS = 7_000;

const runs = new Map<number, number>();
let openGate: () => void = () => {};
let gate = Promise.resolve();

const lwTask = background({ name: 'lockwait.task' }, async function lockwaitTask(n: number) {
  runs.set(n, (runs.get(n) ?? 0) + 1);
  if (n === GATED) await gate;
  return n;
});

type Conn = { connect?: () => Promise<unknown>; query(sql: string): Promise<unknown>; end(): Promise<void>; on(ev: string, fn: () => void): void };

/** The worker's database: the suite's, with lock-wait timeouts of its own on every connection. */
function workerDatabase(db: TestDatabase): Knex.Config {
  type Raw = { query(sql: string, cb: (err: Error | null) => void): void };
  if (db.name === 'postgres') {
    return {
      client: 'pg',
      connection: db.url,
      pool: { afterCreate: (c: Raw, done: (e: Error | null, c: unknown) => void) => c.query("SET lock_timeout = '50ms'", (e) => done(e, c)) },
    };
  }
  const u = new URL(db.url);
  return {
    client: 'mysql2',
    connection: { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username || 'root'), password: decodeURIComponent(u.password), database: u.pathname.slice(1), charset: 'utf8mb4' },
    pool: {
      afterCreate: (c: Raw, done: (e: Error | null, c: unknown) => void) =>
        // Row locks give up after 1 s (the smallest wait in whole seconds); table locks at once.
        c.query('SET SESSION innodb_lock_wait_timeout = 1, SESSION lock_wait_timeout = 0', (e) => done(e, c)),
    },
  };
}

contract('LOCKWAIT-01: locks held on the task table by another session', (db) => {
  if (db.name === 'sqlite') return;
  it('LOCKWAIT-01: locked ready rows are skipped without a stall; a locked running task’s result and a table lock are waited out; nothing lost or run twice', async function () {
    this.timeout(60_000);
    await db.reset();
    runs.clear();
    gate = new Promise<void>((r) => (openGate = r));
    const tasks = db.store.tables.tasks;
    const completed = async () => Number(((await db.store.knex(db.store.tables.completed).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
    const other = (db.name === 'postgres' ? new pg.Client({ connectionString: db.url }) : await mysql.createConnection(db.url)) as unknown as Conn;
    if (other.connect) await other.connect();
    other.on('error', () => {});
    const log = recordingLogger();
    let worker: Worker | null = null;
    let ended = false;
    try {
      const refs = [];
      for (let n = 0; n < 12; n++) refs.push(await lwTask(n));
      const lockedIds = refs.slice(0, 4).map((r) => r.id);
      await other.query('BEGIN');
      // One row at a time, by primary key: on a table this small InnoDB reads `id IN (…)` by a
      // scan, and a locking scan keeps every row it read locked, so every task would be.
      for (const id of lockedIds) await other.query(`SELECT id FROM ${tasks} WHERE id = ${id} FOR UPDATE`);

      const settings = await resolveSettings({ env: {}, overrides: { database: workerDatabase(db), tablePrefix: db.settings.tablePrefix } });
      const startedAt = Date.now();
      worker = await new Worker({ names: ['lockwait.task'], concurrency: 4, sleep: 0.2, lockTimeout: 15, heartbeatInterval: 1, logger: log, workerId: 'lw-worker' }).start(settings);
      void worker.done.then(() => (ended = true));

      // Row locks on four ready tasks: the other eight run, at once.
      await waitUntil(async () => (await completed()) === 8, 'the eight unlocked tasks to finish', 10_000, 50);
      process.stdout.write(`      ${db.name}: eight unlocked tasks finished ${Date.now() - startedAt} ms after the worker started, beside four locked ones\n`);
      const locked = (await db.store.knex(tasks).select('id', 'locked_by', 'attempts').whereIn('id', lockedIds).orderBy('id')) as Array<Record<string, unknown>>;
      expect(locked.map((r) => [String(r.id), r.locked_by, Number(r.attempts)])).to.deep.equal(lockedIds.map((id) => [id, null, 0]));
      await other.query('COMMIT');
      await waitUntil(async () => (await completed()) === 12, 'the four tasks unlocked to finish', 10_000, 50);

      // A row lock on a running task: its result waits for the lock.
      const gated = await lwTask(GATED);
      await waitUntil(() => runs.get(GATED) === 1, 'the gated task to start', 5_000);
      await other.query('BEGIN');
      await other.query(`SELECT id FROM ${tasks} WHERE id = ${gated.id} FOR UPDATE`);
      openGate();
      const rowUntil = Date.now() + ROW_LOCK_MS;
      while (Date.now() < rowUntil) {
        await new Promise((r) => setTimeout(r, 100));
        expect(await completed(), 'the result is not written under the lock').to.equal(12);
      }
      await other.query('COMMIT');
      await waitUntil(async () => (await completed()) === 13, 'the gated task’s result to be recorded once the lock went', 15_000, 50);

      // A table lock that outlasts the store's retries of the worker's claims.
      const late = await lwTask(600, schedule(1));
      // A result write whose lock waits outlasted its retries above reports the database busy too.
      const busyBefore = log.find('warn', /^database busy/).length;
      const backBefore = log.find('warn', /^database no longer busy/).length;
      if (db.name === 'postgres') {
        await other.query('BEGIN');
        await other.query(`LOCK TABLE ${tasks} IN ACCESS EXCLUSIVE MODE`);
      } else {
        await other.query(`LOCK TABLES ${tasks} WRITE`);
      }
      const tableLockedAt = Date.now();
      await waitUntil(() => ended || log.find('warn', /^database busy/).length > busyBefore, 'the worker to report the database busy', TABLE_LOCK_MS);
      expect(ended, `the worker stopped: ${JSON.stringify(log.find('error', /./)[0] ?? null)}`).to.equal(false);
      const busy = log.find('warn', /^database busy/).at(-1)!;
      process.stdout.write(`      ${db.name}: "${busy.msg}" ${Date.now() - tableLockedAt} ms after the table lock (${String(busy.fields.error)})\n`);
      while (Date.now() < tableLockedAt + TABLE_LOCK_MS) await new Promise((r) => setTimeout(r, 100));
      expect(ended, 'the worker still runs under the table lock').to.equal(false);
      await other.query(db.name === 'postgres' ? 'COMMIT' : 'UNLOCK TABLES');
      const unlockedAt = Date.now();
      await waitUntil(async () => (await completed()) === 14, 'the task due during the table lock to run after it', 40_000, 50);
      process.stdout.write(`      ${db.name}: the task due under the table lock finished ${Date.now() - unlockedAt} ms after the unlock\n`);
      expect(log.find('warn', /^database no longer busy/).length).to.equal(backBefore + 1);

      for (const ref of [...refs, gated, late]) {
        const r = await getResult(ref.id);
        expect([ref.id, r.status, r.attempts, r.errors.length]).to.deep.equal([ref.id, 'SUCCESSFUL', 1, 0]);
      }
      for (const n of [...Array(12).keys(), GATED, 600]) expect(runs.get(n), `runs of ${n}`).to.equal(1);
      expect(log.find('warn', /lease lost|recovered a task/)).to.deep.equal([]);
      expect(ended).to.equal(false);
      const summary = await worker.stop(5);
      worker = null;
      expect(summary.reason).to.equal('stopped');
    } finally {
      openGate();
      await other.query(db.name === 'postgres' ? 'ROLLBACK' : 'UNLOCK TABLES').catch(() => {});
      await other.query('ROLLBACK').catch(() => {});
      await other.end().catch(() => {});
      await worker?.stop(5);
    }
  });

  it('LOCKWAIT-01: a result write that waits on a row lock past statementTimeout (no server lock timeout) is kept and written once the lock goes, not recorded as refused', async function () {
    this.timeout(60_000);
    await db.reset();
    runs.clear();
    gate = new Promise<void>((r) => (openGate = r));
    const tasks = db.store.tables.tasks;
    const other = (db.name === 'postgres' ? new pg.Client({ connectionString: db.url }) : await mysql.createConnection(db.url)) as unknown as Conn;
    if (other.connect) await other.connect();
    other.on('error', () => {});
    const log = recordingLogger();
    let worker: Worker | null = null;
    try {
      // The server's own lock waits are long (PG: none; MariaDB: 50 s): the 1 s client-side
      // statementTimeout is what ends each try of the write.
      const settings = await resolveSettings({ env: {}, overrides: { database: db.url, tablePrefix: db.settings.tablePrefix, statementTimeout: 1 } });
      worker = await new Worker({ names: ['lockwait.task'], concurrency: 1, sleep: 0.2, lockTimeout: 30, heartbeatInterval: 1, logger: log, workerId: 'lw-worker' }).start(settings);
      const gated = await lwTask(GATED);
      await waitUntil(() => runs.get(GATED) === 1, 'the gated task to start', 5_000);
      await other.query('BEGIN');
      await other.query(`SELECT id FROM ${tasks} WHERE id = ${gated.id} FOR UPDATE`);
      openGate();
      const timedOut = () => log.find('warn', /^database unreachable/).filter((l) => /statementTimeout/.test(String(l.fields.error))).length;
      await waitUntil(() => timedOut() >= 1 || log.find('error', /./).length > 0, 'a write to run out of time under the lock', 10_000, 50);
      // Before the fix: "could not record a task's end, nor its failure" (to run again after its lease).
      expect(log.find('error', /./).map((l) => l.msg)).to.deep.equal([]);
      // Several more timeouts of the result write and of the heartbeat, each a second long.
      const lockedUntil = Date.now() + 4_000;
      while (Date.now() < lockedUntil) {
        await new Promise((r) => setTimeout(r, 100));
        expect((await getResult(gated.id)).status, 'nothing written under the lock').to.equal('RUNNING');
      }
      await other.query('COMMIT');
      await waitUntil(async () => (await getResult(gated.id)).isFinished, 'the result to be recorded once the lock went', 20_000, 50);
      const r = await getResult(gated.id);
      expect([r.status, r.attempts, r.errors.length, r.returnValue]).to.deep.equal(['SUCCESSFUL', 1, 0, GATED]);
      expect(runs.get(GATED)).to.equal(1);
      expect(log.find('error', /./), 'no error logged').to.deep.equal([]);
      expect(log.find('warn', /lease lost|recovered a task/)).to.deep.equal([]);
    } finally {
      openGate();
      await other.query('ROLLBACK').catch(() => {});
      await other.end().catch(() => {});
      await worker?.stop(5);
    }
  });
});

/**
 * SQLite's connection set-up and its one-row insert outside the query builder
 * (core/store/dialects/sqlite-prepared.ts): the paths that differ by driver, on both drivers knex
 * knows. node-sqlite3 is the one bgtasks' own pools use; better-sqlite3 is one an application's
 * knex instance may use (a devDependency here, so CI runs it; without it those tests print a
 * notice and skip). Each test opens its own knex on a file of its own.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { insertPrepared, MAX_STATEMENTS, preparable } from '../../../core/store/dialects/sqlite-prepared.js';
import { SQLITE_BUSY_TIMEOUT_MS, sqliteDialect } from '../../../core/store/dialects/sqlite.js';
import { DEFAULT_TIMEOUTS } from '../../../core/store/connection.js';
import { AVAILABLE, makeTempDir, removeTempDir, skipUnless, unavailable, type Availability } from '../../helpers/processes.js';
import { contract, waitUntil } from '../../helpers/databases.js';
import { newTask, seed } from '../../helpers/store-fixtures.js';

function driverAvailable(client: string): Availability {
  try {
    createRequire(import.meta.url).resolve(client);
    return AVAILABLE;
  } catch {
    return unavailable(`the ${client} package is not installed (npm ci installs it as a devDependency)`);
  }
}

/** How many of this process's file descriptors are open on `file`. */
function openDescriptors(file: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false; // closed between the listing and the read
    }
  }).length;
}

for (const client of ['sqlite3', 'better-sqlite3']) {
  describe(`SQLite on ${client}: connection set-up and the prepared one-row insert`, function () {
    let dir = '';
    const opened: Knex[] = [];

    before(function () {
      skipUnless(this, driverAvailable(client), `SQLite prepared insert on ${client}`);
    });
    beforeEach(() => {
      dir = makeTempDir('prepared');
    });
    afterEach(async () => {
      for (const k of opened.splice(0)) await k.destroy();
      removeTempDir(dir);
    });

    /** A knex set up as bgtasks sets up its own SQLite pools (one connection, its pragmas). */
    async function open(): Promise<Knex> {
      const config = sqliteDialect.prepareConfig({ client, connection: { filename: path.join(dir, 'p.sqlite3') } }, DEFAULT_TIMEOUTS);
      const knex = knexFactory(config);
      opened.push(knex);
      await knex.schema.createTable('t', (t) => {
        t.increments('id');
        t.string('a');
        t.integer('b');
        t.boolean('flag').notNullable().defaultTo(true);
      });
      return knex;
    }

    it("gets bgtasks' connection set-up: WAL, the busy timeout, foreign keys", async () => {
      const knex = await open();
      const pragma = async (name: string) => Object.values(((await knex.raw(`PRAGMA ${name}`)) as Array<Record<string, unknown>>)[0]!)[0];
      expect(await pragma('journal_mode')).to.equal('wal');
      expect(await pragma('busy_timeout')).to.equal(SQLITE_BUSY_TIMEOUT_MS);
      expect(await pragma('foreign_keys')).to.equal(1);
      expect(await pragma('synchronous')).to.equal(1); // NORMAL
    });

    it("sets bgtasks' busy timeout on the connections an application's own knex opens (prepareExternal)", async () => {
      const knex = knexFactory({ client, connection: { filename: path.join(dir, 'app.sqlite3') }, useNullAsDefault: true, pool: { min: 0, max: 1 } });
      opened.push(knex);
      sqliteDialect.prepareExternal(knex);
      const [row] = (await knex.raw('PRAGMA busy_timeout')) as Array<Record<string, unknown>>;
      expect(Object.values(row!)[0]).to.equal(SQLITE_BUSY_TIMEOUT_MS);
    });

    it('stores the row and returns its id, converting booleans as knex stores them', async () => {
      const knex = await open();
      expect(await insertPrepared(knex, 't', { a: 'x', b: 1 })).to.equal('1');
      expect(await insertPrepared(knex, 't', { a: 'y', b: 2, flag: false })).to.equal('2');
      expect(await insertPrepared(knex, 't', { a: 'z', b: null, flag: true })).to.equal('3');
      expect(await knex('t').select('id', 'a', 'b', 'flag').orderBy('id')).to.deep.equal([
        { id: 1, a: 'x', b: 1, flag: 1 },
        { id: 2, a: 'y', b: 2, flag: 0 },
        { id: 3, a: 'z', b: null, flag: 1 },
      ]);
    });

    it('takes only rows of strings, numbers, bigints, booleans and nulls (the rest goes through knex)', () => {
      expect(preparable({ a: 'x', b: 1, c: 2n, d: true, e: null })).to.equal(true);
      for (const odd of [{ a: new Date(0) }, { a: Buffer.from('x') }, { a: { b: 1 } }, { a: undefined }, {}]) {
        expect(preparable(odd), JSON.stringify(odd)).to.equal(false);
      }
    });

    it("is seen by knex's query and query-response events, paired by a query id as knex pairs its own", async () => {
      const knex = await open();
      const seen: string[] = [];
      const ids: unknown[] = [];
      knex.on('query', (q: { sql: string; bindings: unknown[]; __knexQueryUid: unknown }) => {
        seen.push(`query ${q.sql} ${JSON.stringify(q.bindings)}`);
        ids.push(q.__knexQueryUid);
      });
      knex.on('query-response', (r: unknown, q: { __knexQueryUid: unknown }) => {
        seen.push(`response ${JSON.stringify(r)}`);
        ids.push(q.__knexQueryUid);
      });
      await insertPrepared(knex, 't', { a: 'x', flag: true });
      await insertPrepared(knex, 't', { a: 'y', flag: true });
      expect(seen).to.deep.equal([
        'query INSERT INTO "t" ("a", "flag") VALUES (?, ?) ["x",1]',
        'response [1]',
        'query INSERT INTO "t" ("a", "flag") VALUES (?, ?) ["y",1]',
        'response [2]',
      ]);
      expect(ids[0]).to.be.a('string').and.equal(ids[1]);
      expect(ids[2]).to.equal(ids[3]).and.not.equal(ids[0]);
    });

    it('waits for the connection while a transaction holds it, and never writes inside that transaction', async () => {
      const knex = await open();
      const trx = await knex.transaction();
      await trx('t').insert({ a: 'in the transaction' });
      let done = false;
      const outside = insertPrepared(knex, 't', { a: 'outside' }).then((id) => ((done = true), id));
      const pool = (knex.client as { pool: { numPendingAcquires(): number } }).pool;
      await waitUntil(() => pool.numPendingAcquires() === 1, 'the insert asking the pool for its one connection');
      expect(done, 'the insert waits for the pool').to.equal(false);
      await trx.rollback();
      expect(await outside).to.equal('1');
      expect(await knex('t').pluck('a')).to.deep.equal(['outside']);
    });

    it('reports a failed prepare (no such table), to knex\'s query-error event too, and prepares again once the table exists', async () => {
      const knex = await open();
      let err: unknown = null;
      const reported: unknown[] = [];
      knex.on('query-error', (e: unknown) => reported.push(e));
      await insertPrepared(knex, 'later', { a: 'x' }).catch((e: unknown) => (err = e));
      expect(String((err as Error | null)?.message)).to.match(/no such table: later/);
      expect(reported).to.deep.equal([err]);
      await knex.schema.createTable('later', (t) => {
        t.increments('id');
        t.string('a');
      });
      expect(await insertPrepared(knex, 'later', { a: 'x' })).to.equal('1');
    });

    it(`prepares a statement for each of more column lists than the ${MAX_STATEMENTS} it keeps, and the connection still closes`, async () => {
      const knex = await open();
      await knex.schema.alterTable('t', (t) => {
        for (let i = 0; i < 6; i++) t.integer(`c${i}`);
      });
      // 2^6 = 64 column lists, each a statement of its own: twice what a connection keeps.
      for (let mask = 0; mask < 64; mask++) {
        const row: Record<string, unknown> = { a: `m${mask}` };
        for (let i = 0; i < 6; i++) if (mask & (1 << i)) row[`c${i}`] = i;
        await insertPrepared(knex, 't', row);
      }
      await insertPrepared(knex, 't', { a: 'again' });
      expect(await knex('t').count({ n: '*' })).to.deep.equal([{ n: 65 }]);
      // node-sqlite3 refuses to close a connection with statements not finalized (SQLITE_BUSY), and
      // knex's pool does not pass that on: the file would stay open.
      const file = path.join(dir, 'p.sqlite3');
      expect(openDescriptors(file), 'descriptors open on the database file before the close').to.be.above(0);
      opened.splice(opened.indexOf(knex), 1);
      await knex.destroy();
      expect(openDescriptors(file), 'descriptors open on the database file after the close').to.equal(0);
    });
  });
}

contract('the store inserts one task through the prepared insert (SQLite)', (db) => {
  if (db.name !== 'sqlite') return;

  beforeEach(() => db.reset());

  it('outside a transaction; inside one, through the transaction', async () => {
    const seen: Array<{ sql: string; prepared?: boolean }> = [];
    const listen = (q: { sql: string; prepared?: boolean }) => seen.push(q);
    db.store.knex.on('query', listen);
    try {
      const [id] = await seed(db, [newTask()]);
      const inTrx = await db.store.knex.transaction(async (trx) => db.store.insertTasks([newTask()], trx));
      const inserts = seen.filter((q) => /^insert into/i.test(q.sql)).map((q) => q.prepared === true);
      expect(inserts).to.deep.equal([true, false]);
      expect(await db.store.knex(db.store.tables.tasks).orderBy('id').pluck('id')).to.deep.equal([Number(id), Number(inTrx[0])]);
    } finally {
      db.store.knex.off('query', listen);
    }
  });
});

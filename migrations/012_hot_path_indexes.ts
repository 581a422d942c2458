/**
 * Two indexes of the task table reshaped for the hot paths (enqueue, claim, lease renewal,
 * settle), found in LONGTX-01: a transaction held open beside a steady load.
 *
 * MySQL/MariaDB: the dedupe index holds the first 8 characters of each hash instead of all 40. A
 * lookup by hash (`WHERE hash = ?`, twins in store/enqueue.ts) reads the few entries with that
 * prefix and checks the whole hash in their rows; 8 hex characters tell about four billion hashes
 * apart, so a false candidate is rare even among millions of pending tasks. Why: it is the only
 * index of the task table written in random order (every other one grows at its end: by id, by
 * time, or by claim order), so all of it must stay in InnoDB's buffer pool, while the rest only
 * needs its newest pages there. Beside a transaction held open, InnoDB's purge stops and every
 * task run meanwhile leaves its entry behind: in LONGTX-01 (128 MB buffer pool, about 10,000
 * tasks/s) the full-width index outgrew the pool within the first minute, and each enqueue and
 * each settle then waited for a page read from disk (throughput 0.38 of the clean run over four
 * minutes; 0.65 with this index; 1.19 with no dedupe index at all). An entry is about 22 bytes
 * instead of about 54: the same buffer pool holds a held transaction 2.5 times as long.
 *
 * PostgreSQL: the dashboard's index over (enqueued_at, id) becomes partial, `WHERE enqueued_at
 * IS NOT NULL` (every row: the column is NOT NULL), so that only a query that says so (the
 * dashboard's pages do: store/task-pages.ts) can use it. Its second column is the id, and the
 * planner answered lookups by id (a settle's `id = ANY`, a lease renewal) with a read of the
 * whole index whenever the table's statistics said it was nearly empty, which a queue's table
 * often does (a few thousand live rows among millions of dead ones): 0.8 to 4.5 s a settle.
 * The primary key is then the only index that can find a row by id.
 *
 * SQLite reads its indexes through the operating system's cache, and its planner has no such
 * statistics: unchanged.
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '012_hot_path_indexes';

/** Characters of the hash the MySQL/MariaDB dedupe index holds. */
export const HASH_PREFIX = 8;

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  if (ctx.dialect.name === 'mysql') {
    // One statement: the table never lacks its dedupe index.
    await knex.raw(`ALTER TABLE ${p}tasks DROP INDEX ${p}tasks_hash, ADD INDEX ${p}tasks_hash (hash(${HASH_PREFIX}))`);
  } else if (ctx.dialect.name === 'postgres') {
    await knex.raw(`DROP INDEX ${p}tasks_enqueued`);
    await knex.raw(`CREATE INDEX ${p}tasks_enqueued ON ${p}tasks (enqueued_at, id) WHERE enqueued_at IS NOT NULL`);
  }
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  if (ctx.dialect.name === 'mysql') {
    await knex.raw(`ALTER TABLE ${p}tasks DROP INDEX ${p}tasks_hash, ADD INDEX ${p}tasks_hash (hash)`);
  } else if (ctx.dialect.name === 'postgres') {
    await knex.raw(`DROP INDEX ${p}tasks_enqueued`);
    await knex.raw(`CREATE INDEX ${p}tasks_enqueued ON ${p}tasks (enqueued_at, id)`);
  }
}

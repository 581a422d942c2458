/**
 * MySQL/MariaDB only: the dedupe index of the task table holds the first 8 characters of each
 * hash instead of all 40. A lookup by hash (`WHERE hash = ?`, twins in store/enqueue.ts) reads the
 * few entries with that prefix and checks the whole hash in their rows; 8 hex characters tell
 * about four billion hashes apart, so a false candidate is rare even among millions of pending
 * tasks.
 *
 * Why: it is the only index of the task table written in random order (every other one grows at
 * its end: by id, by time, or by claim order), so all of it must stay in InnoDB's buffer pool,
 * while the rest only needs its newest pages there. Beside a transaction held open, InnoDB's purge
 * stops and every task run meanwhile leaves its entry behind: in LONGTX-01 (128 MB buffer pool,
 * about 10,000 tasks/s) the full-width index outgrew the pool within the first minute, and each
 * enqueue and each settle then waited for a page read from disk (throughput 0.38 of the clean run
 * over four minutes; 0.65 with this index; 1.19 with no dedupe index at all). An entry is about
 * 22 bytes instead of about 54: the same buffer pool holds a held transaction 2.5 times as long.
 * SQLite and PostgreSQL read their indexes through the operating system's cache: unchanged.
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '012_short_hash_index';

/** Characters of the hash the MySQL/MariaDB dedupe index holds. */
export const HASH_PREFIX = 8;

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  if (ctx.dialect.name !== 'mysql') return;
  const p = ctx.prefix;
  // One statement: the table never lacks its dedupe index.
  await knex.raw(`ALTER TABLE ${p}tasks DROP INDEX ${p}tasks_hash, ADD INDEX ${p}tasks_hash (hash(${HASH_PREFIX}))`);
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  if (ctx.dialect.name !== 'mysql') return;
  const p = ctx.prefix;
  await knex.raw(`ALTER TABLE ${p}tasks DROP INDEX ${p}tasks_hash, ADD INDEX ${p}tasks_hash (hash)`);
}

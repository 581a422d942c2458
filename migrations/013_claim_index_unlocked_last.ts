/**
 * MySQL/MariaDB: the claim index puts the unlocked, unkeyed tasks at its very end, by ordering
 * locked_by and concurrency_key descending (NULL sorts first ascending, so last descending):
 * `(locked_by DESC, concurrency_key DESC, priority DESC, run_at, id)`. The claim reads the same
 * entries in the same order as before; what changes is what lies after them.
 *
 * Why: an InnoDB range read checks where its range ends only on a live entry. Entries that wait
 * for purge (delete-marked) are skipped before that check, so a read that reaches the end of its
 * range before its LIMIT (a claim that finds fewer due tasks than it wants) goes on through every
 * delete-marked entry after the range, up to the next live one. With locked_by ascending, what
 * came after the unlocked tasks was the entries of running and finished tasks, and beside a
 * transaction held open (purge stopped) one entry stays there for every task finished since it
 * began. In LONGTX-01 such a claim read 2 to 8 million pages after a few minutes (0.5 to 4.5 s a
 * claim) and the worker's throughput fell to a twentieth. Now a read that runs off the end of the
 * unlocked tasks reaches the end of the index.
 *
 * PostgreSQL checks a range's end on every entry, and its claim index is partial (unlocked tasks
 * only); SQLite has no such entries: unchanged.
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '013_claim_index_unlocked_last';

async function reshape(knex: Knex, p: string, columns: string): Promise<void> {
  // One statement: the table never lacks its claim index.
  await knex.raw(`ALTER TABLE ${p}tasks DROP INDEX ${p}tasks_claim, ADD INDEX ${p}tasks_claim (${columns})`);
}

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  if (ctx.dialect.name === 'mysql') await reshape(knex, ctx.prefix, 'locked_by DESC, concurrency_key DESC, priority DESC, run_at, id');
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  if (ctx.dialect.name === 'mysql') await reshape(knex, ctx.prefix, 'locked_by, concurrency_key, priority DESC, run_at, id');
}

/**
 * The idempotency key of the enqueue that created a task (`schedule(when, { idempotencyKey })`,
 * docs/api.md): an application that does not know whether an enqueue was stored (its answer was
 * lost, TIMEOUT-01) enqueues again with the same key and gets the stored task instead of a twin.
 *
 * On the pending table with a unique index: one pending task per key, whoever inserts it. On the
 * completed table, where the finished task keeps its key until its result is pruned, a plain index
 * for the look-up (never unique: a settle must not fail on it). PostgreSQL and SQLite index only
 * the rows that have a key; MySQL/MariaDB allow many NULLs in a unique index, and index them all.
 * Nullable, without a default: adding it rewrites no row. On MySQL/MariaDB the column compares
 * exactly, like every identifier (003).
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';
import { exactCollation } from './003_exact_identifiers.js';

export const name = '009_idempotency_key';

const COLUMN = 'idempotency_key';

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  const collation = ctx.dialect.name === 'mysql' ? await exactCollation(knex) : null;
  for (const table of [`${p}tasks`, `${p}completed_tasks`]) {
    await knex.schema.alterTable(table, (t) => {
      const c = t.string(COLUMN, 190).nullable();
      if (collation) c.collate(collation);
    });
  }
  const where = ctx.dialect.name === 'mysql' ? '' : ` WHERE ${COLUMN} IS NOT NULL`;
  await knex.raw(`CREATE UNIQUE INDEX ?? ON ?? (??)${where}`, [`${p}tasks_idempotency`, `${p}tasks`, COLUMN]);
  await knex.raw(`CREATE INDEX ?? ON ?? (??)${where}`, [`${p}completed_idempotency`, `${p}completed_tasks`, COLUMN]);
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  for (const [table, index] of [
    [`${p}tasks`, `${p}tasks_idempotency`],
    [`${p}completed_tasks`, `${p}completed_idempotency`],
  ] as const) {
    // SQLite refuses to drop a column an index still names; MySQL's DROP INDEX names its table.
    if (ctx.dialect.name === 'mysql') await knex.raw('DROP INDEX ?? ON ??', [index, table]);
    else await knex.raw('DROP INDEX ??', [index]);
    // SQLite: dropped in place (3.35+), as in 007: knex's table copy is refused by the completed
    // table's trigger.
    await knex.raw('ALTER TABLE ?? DROP COLUMN ??', [table, COLUMN]);
  }
}

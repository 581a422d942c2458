/**
 * The worker registry: one row per worker process, written when it starts, refreshed on its
 * heartbeat timer (never per task), marked stopped on a clean stop, and deleted by the workers a
 * week after its last heartbeat. The dashboard, `bgtasks workers`, `bgtasks why` and `health`
 * read it; a worker whose heartbeat stopped without a goodbye is "lost".
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';
import { exactCollation } from './003_exact_identifiers.js';

export const name = '005_worker_registry';

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  const collation = ctx.dialect.name === 'mysql' ? await exactCollation(knex) : null;
  const exact = (c: Knex.ColumnBuilder) => (collation ? c.collate(collation) : c);
  await knex.schema.createTable(`${p}workers`, (t) => {
    exact(t.string('id', 64).notNullable()).primary();
    t.string('host', 255).notNullable();
    t.integer('pid').nullable();
    t.string('version', 40).nullable();
    /** JSON: the queues it claims from (null: all), those it excludes, the task names it runs and their limits. */
    t.text('queues', 'longtext').nullable();
    t.text('exclude_queues', 'longtext').nullable();
    t.text('names', 'longtext').notNullable();
    t.text('limits', 'longtext').nullable();
    t.integer('concurrency').notNullable();
    t.bigInteger('started_at').notNullable();
    t.bigInteger('heartbeat_at').notNullable();
    t.bigInteger('heartbeat_ms').notNullable();
    /** Epoch ms when a `--duration` run stops taking tasks for good (its deadline plus grace). */
    t.bigInteger('run_until').nullable();
    t.bigInteger('stopped_at').nullable();
    t.index(['heartbeat_at'], `${p}workers_heartbeat`);
  });
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  await knex.schema.dropTableIfExists(`${ctx.prefix}workers`);
}

/**
 * The initial schema. Timestamps are epoch milliseconds in BIGINT columns: UTC by construction,
 * compared exactly on every database, never shifted by a driver's or a server's time zone.
 * Durations are stored in milliseconds (`…_ms`).
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '001_initial';

/** Columns shared by the pending and the completed table. */
function taskColumns(t: Knex.CreateTableBuilder): void {
  t.string('name', 190).notNullable();
  // MySQL: LONGTEXT (plain TEXT stops at 64 KiB); other databases ignore the text type.
  t.text('args', 'longtext').notNullable();
  t.string('hash', 40).notNullable();
  t.string('queue', 190).nullable();
  t.integer('priority').notNullable().defaultTo(0);
  t.string('verbose_name', 255).nullable();
  t.string('creator_type', 190).nullable();
  t.string('creator_id', 190).nullable();
  t.bigInteger('run_at').notNullable();
  t.bigInteger('scheduled_at').notNullable();
  t.bigInteger('enqueued_at').notNullable();
  t.integer('attempts').notNullable().defaultTo(0);
  t.bigInteger('repeat_every_ms').notNullable().defaultTo(0);
  t.string('repeat_cron', 255).nullable();
  t.string('timezone', 64).nullable();
  t.bigInteger('repeat_until').nullable();
  t.string('recurring_key', 190).nullable();
  t.text('last_error', 'longtext').nullable();
  t.text('errors', 'longtext').nullable();
}

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  await knex.schema.createTable(`${p}tasks`, (t) => {
    t.bigIncrements('id').primary();
    taskColumns(t);
    t.integer('max_attempts').nullable();
    t.bigInteger('max_run_time_ms').nullable();
    t.bigInteger('expires_at').nullable();
    t.boolean('repeat_on_failure').notNullable().defaultTo(true);
    t.string('locked_by', 64).nullable();
    t.string('claim_token', 80).nullable();
    t.bigInteger('locked_at').nullable();
    t.bigInteger('locked_until').nullable();
    t.boolean('cancel_requested').notNullable().defaultTo(false);
    t.index(['hash'], `${p}tasks_hash`);
  });
  // Only tasks in a named queue (queue counts and filters name one); tasks without a queue, often
  // most of them, then cost no index entry where the database has partial indexes.
  await ctx.dialect.createIndex(knex, `${p}tasks`, `${p}tasks_queue`, 'queue', 'queue IS NOT NULL');
  // The claim reads this index in claim order and stops after the batch: a range scan, not a sort.
  await ctx.dialect.createIndex(knex, `${p}tasks`, `${p}tasks_claim`, 'priority DESC, run_at, id', 'locked_by IS NULL');
  // Lease recovery looks for expired leases only.
  await ctx.dialect.createIndex(knex, `${p}tasks`, `${p}tasks_lease`, 'locked_until', 'locked_by IS NOT NULL');

  await knex.schema.createTable(`${p}completed_tasks`, (t) => {
    // The task's own id: a result stays findable by the id enqueue returned.
    t.bigInteger('task_id').primary();
    taskColumns(t);
    t.bigInteger('started_at').nullable();
    t.bigInteger('finished_at').notNullable();
    t.bigInteger('failed_at').nullable();
    t.text('return_value', 'longtext').nullable();
    t.string('worker_id', 64).nullable();
    t.index(['finished_at'], `${p}completed_finished`);
  });
  // Failures only: successes, the bulk of the table, need no entry.
  await ctx.dialect.createIndex(knex, `${p}completed_tasks`, `${p}completed_failed`, 'failed_at', 'failed_at IS NOT NULL');

  await ctx.dialect.extraSchema(knex, { tasks: `${p}tasks`, completed: `${p}completed_tasks` }, 'up');

  // One row per dedupe hash (or other key) that needed serialising; see Store.lockKey.
  await knex.schema.createTable(`${p}locks`, (t) => {
    t.string('key', 190).primary();
    t.bigInteger('locked_at').notNullable();
  });
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  await ctx.dialect.extraSchema(knex, { tasks: `${p}tasks`, completed: `${p}completed_tasks` }, 'down');
  await knex.schema.dropTableIfExists(`${p}locks`);
  await knex.schema.dropTableIfExists(`${p}completed_tasks`);
  await knex.schema.dropTableIfExists(`${p}tasks`);
}

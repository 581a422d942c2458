/**
 * Flow control (docs/flow-control.md): queues that can be paused and limited, concurrency keys on
 * tasks, the record of starts that rate limits count, and claim indexes that keep claims cheap
 * when some tasks are held back.
 *
 * - `<prefix>queues`: one row per queue that has been paused or given limits (a queue without a
 *   row is running and unlimited). Pausing a queue nobody has used yet creates its row.
 * - `<prefix>rate_starts`: one row per attempt started under a rate limit, named by its limiter
 *   (`task sendMail#rate`, `queue mail key user:7#rate`); rows older than the longest period are
 *   deleted by the workers.
 * - `concurrency_key` on both task tables (computed at enqueue), `snoozes` (how many times a task
 *   put itself back with ctx.snooze()).
 * - The claim index no longer holds keyed tasks (they are claimed per key, through their own
 *   index), so a backlog of keyed tasks held back by their limits is never scanned by the plain
 *   claim; and a per-queue claim index lets a worker skip a paused queue's backlog.
 *
 * MySQL/MariaDB have no partial indexes: there the claim index leads with locked_by and
 * concurrency_key (one index serves plain and keyed claims, and lease recovery), and the queue
 * index with locked_by and queue. Identifier columns get the exact collation of 003.
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';
import { exactCollation } from './003_exact_identifiers.js';

export const name = '004_flow_control';

async function identifier(knex: Knex, ctx: MigrationContext): Promise<(c: Knex.ColumnBuilder) => Knex.ColumnBuilder> {
  if (ctx.dialect.name !== 'mysql') return (c) => c;
  const collation = await exactCollation(knex);
  return (c) => c.collate(collation);
}

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  const exact = await identifier(knex, ctx);
  await knex.schema.createTable(`${p}queues`, (t) => {
    exact(t.string('name', 190).notNullable()).primary();
    t.boolean('paused').notNullable().defaultTo(false);
    t.integer('concurrency').nullable();
    t.integer('rate_limit').nullable();
    t.bigInteger('rate_period_ms').nullable();
    t.boolean('rate_per_key').notNullable().defaultTo(false);
    t.bigInteger('updated_at').notNullable();
    exact(t.string('updated_by', 190).nullable());
  });
  await knex.schema.createTable(`${p}rate_starts`, (t) => {
    t.bigIncrements('id').primary();
    exact(t.string('limiter', 255).notNullable());
    t.bigInteger('started_at').notNullable();
    t.index(['limiter', 'started_at'], `${p}rate_starts_window`);
  });
  for (const table of [`${p}tasks`, `${p}completed_tasks`]) {
    await knex.schema.alterTable(table, (t) => {
      exact(t.string('concurrency_key', 190).nullable());
      t.integer('snoozes').notNullable().defaultTo(0);
    });
  }
  const tasks = `${p}tasks`;
  if (ctx.dialect.name === 'mysql') {
    await knex.raw(`DROP INDEX ${p}tasks_claim ON ${tasks}`);
    await knex.raw(`CREATE INDEX ${p}tasks_claim ON ${tasks} (locked_by, concurrency_key, priority DESC, run_at, id)`);
    await knex.raw(`CREATE INDEX ${p}tasks_claim_queue ON ${tasks} (locked_by, queue, priority DESC, run_at, id)`);
    return;
  }
  await knex.raw(`DROP INDEX ${p}tasks_claim`);
  await knex.raw(`CREATE INDEX ${p}tasks_claim ON ${tasks} (priority DESC, run_at, id) WHERE locked_by IS NULL AND concurrency_key IS NULL`);
  await knex.raw(
    `CREATE INDEX ${p}tasks_claim_key ON ${tasks} (concurrency_key, priority DESC, run_at, id) WHERE locked_by IS NULL AND concurrency_key IS NOT NULL`,
  );
  await knex.raw(`CREATE INDEX ${p}tasks_claim_queue ON ${tasks} (queue, priority DESC, run_at, id) WHERE locked_by IS NULL`);
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  const tasks = `${p}tasks`;
  if (ctx.dialect.name === 'mysql') {
    await knex.raw(`DROP INDEX ${p}tasks_claim_queue ON ${tasks}`);
    await knex.raw(`DROP INDEX ${p}tasks_claim ON ${tasks}`);
    await knex.raw(`CREATE INDEX ${p}tasks_claim ON ${tasks} (locked_by, priority DESC, run_at, id)`);
  } else {
    await knex.raw(`DROP INDEX ${p}tasks_claim_queue`);
    await knex.raw(`DROP INDEX ${p}tasks_claim_key`);
    await knex.raw(`DROP INDEX ${p}tasks_claim`);
    await knex.raw(`CREATE INDEX ${p}tasks_claim ON ${tasks} (priority DESC, run_at, id) WHERE locked_by IS NULL`);
  }
  for (const table of [`${p}tasks`, `${p}completed_tasks`]) {
    if (ctx.dialect.name === 'sqlite') {
      // SQLite: knex drops a column by copying the table and renaming the copy, which the trigger
      // on the completed table (it names the tasks table) refuses; SQLite >= 3.35 drops it in place.
      for (const column of ['snoozes', 'concurrency_key']) await knex.raw(`ALTER TABLE "${table}" DROP COLUMN ${column}`);
      continue;
    }
    await knex.schema.alterTable(table, (t) => {
      t.dropColumn('snoozes');
      t.dropColumn('concurrency_key');
    });
  }
  await knex.schema.dropTableIfExists(`${p}rate_starts`);
  await knex.schema.dropTableIfExists(`${p}queues`);
}

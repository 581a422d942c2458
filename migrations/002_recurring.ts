/**
 * Recurring schedules declared in task files (`background({ cron })`). One row per schedule says
 * what it is and which slot was handled last; one row per enqueued slot, under a unique key on
 * (task name, schedule key, slot), makes every slot enqueued exactly once however many workers
 * race for it. Result pruning never touches these tables.
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '002_recurring';

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  await knex.schema.createTable(`${p}schedules`, (t) => {
    t.string('name', 190).notNullable();
    t.string('key', 190).notNullable();
    t.string('cron', 255).notNullable();
    t.string('timezone', 64).notNullable();
    t.text('args', 'longtext').notNullable();
    t.string('catch_up', 20).notNullable();
    t.bigInteger('last_slot').nullable();
    t.bigInteger('updated_at').notNullable();
    t.string('updated_by', 64).nullable();
    t.primary(['name', 'key']);
  });
  await knex.schema.createTable(`${p}schedule_slots`, (t) => {
    t.string('name', 190).notNullable();
    t.string('key', 190).notNullable();
    t.bigInteger('slot').notNullable();
    t.string('task_id', 20).nullable();
    t.bigInteger('created_at').notNullable();
    t.primary(['name', 'key', 'slot']);
    t.index(['created_at'], `${p}schedule_slots_created`);
  });
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  await knex.schema.dropTableIfExists(`${ctx.prefix}schedule_slots`);
  await knex.schema.dropTableIfExists(`${ctx.prefix}schedules`);
}

/**
 * The trace context of the enqueue that created a task (docs/observability.md#traces): the W3C
 * `traceparent` and `tracestate` of its producer span, as JSON, so each attempt's consumer span
 * continues that trace, retries included. On the pending table and copied to the completed one.
 * NULL when OpenTelemetry was not in use at enqueue. Nullable and without a default, so adding it
 * rewrites no existing row (instant on MariaDB 10.3+ and PostgreSQL 11+).
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '007_trace_context';

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  for (const table of [`${ctx.prefix}tasks`, `${ctx.prefix}completed_tasks`]) {
    await knex.schema.alterTable(table, (t) => {
      t.text('trace_context').nullable();
    });
  }
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  // SQLite: knex drops a column by copying the table, which a trigger on the completed table
  // refuses; SQLite 3.35+ (the one sqlite3 ships) drops it in place, as the other two do.
  for (const table of [`${ctx.prefix}tasks`, `${ctx.prefix}completed_tasks`]) {
    await knex.raw('ALTER TABLE ?? DROP COLUMN ??', [table, 'trace_context']);
  }
}

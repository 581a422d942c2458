/**
 * The liveness beat of each registered worker (docs/reliability.md): `alive_at`, when its last
 * liveness beat was sent (epoch ms, the worker's clock, which keeps the database's time), and
 * `liveness_ms`, the silence after which the worker counts as dead, stopped or cut off (its
 * `livenessTimeout`). The beat comes from a thread of the worker's own, so it goes on while a
 * task blocks the worker's event loop. NULL in both: no beat (turned off, SQLite, or a worker of
 * an older version), and that worker's tasks wait for their lease as before. Nullable, without a
 * default: adding them rewrites no row.
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '010_worker_liveness';

const COLUMNS = ['alive_at', 'liveness_ms'] as const;

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  await knex.schema.alterTable(`${ctx.prefix}workers`, (t) => {
    for (const c of COLUMNS) t.bigInteger(c).nullable();
  });
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  // SQLite: dropped in place (3.35+), one column per statement.
  for (const c of COLUMNS) await knex.raw('ALTER TABLE ?? DROP COLUMN ??', [`${ctx.prefix}workers`, c]);
}

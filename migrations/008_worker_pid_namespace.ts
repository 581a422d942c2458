/**
 * The pid namespace of each registered worker (Linux: the target of /proc/self/ns/pid, such as
 * `pid:[4026531836]`; NULL elsewhere). A worker recovers another's tasks early only when that
 * worker's process is certainly gone, which it can tell only for a process in its own pid
 * namespace: containers sharing a host name (host networking) have pid namespaces of their own.
 * Nullable, without a default: adding it rewrites no row.
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '008_worker_pid_namespace';

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  await knex.schema.alterTable(`${ctx.prefix}workers`, (t) => {
    t.string('pid_ns', 64).nullable();
  });
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  await knex.raw('ALTER TABLE ?? DROP COLUMN ??', [`${ctx.prefix}workers`, 'pid_ns']);
}

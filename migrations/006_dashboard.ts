/**
 * The dashboard's reads (docs/dashboard.md), kept fast on tables of millions of rows:
 *
 * - `last_error_class` on both task tables: the class of the last error record, written with it
 *   at settle. The Failed page groups failures by task name and this class, and the tasks page
 *   filters by it; read out of the JSON history instead, either would parse every failed row.
 *   Rows stored before this migration are filled here from their history (in batches, in
 *   JavaScript: a hand-edited history that is not JSON must not stop the migration).
 * - `(enqueued_at, id)` on both tables: the tasks page's default order (newest first) and its
 *   keyset pages read an index range instead of sorting the table.
 * - `(name, last_error_class, failed_at)` on the completed table, failures only where the
 *   database has partial indexes: the grouping reads the index alone.
 *
 * Identifier columns get the exact collation of 003 on MySQL/MariaDB.
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';
import { exactCollation } from './003_exact_identifiers.js';

export const name = '006_dashboard';

const BATCH = 1000;

/** The class of the last record of a stored history, or null (none, or unreadable). */
function lastClass(text: unknown): string | null {
  if (typeof text !== 'string' || text === '') return null;
  try {
    const list = JSON.parse(text) as unknown;
    if (!Array.isArray(list) || list.length === 0) return null;
    const last = list[list.length - 1] as { class?: unknown } | null;
    return last && typeof last.class === 'string' ? last.class.slice(0, 190) : null;
  } catch {
    return null;
  }
}

/** Fills the column for rows that have a history, by id ranges (no OFFSET). */
async function backfill(knex: Knex, table: string, key: string): Promise<void> {
  let after: unknown = null;
  for (;;) {
    const q = knex(table).select(key, 'errors').whereNotNull('errors').orderBy(key).limit(BATCH);
    if (after !== null) q.where(key, '>', after as Knex.Value);
    const rows = (await q) as Array<Record<string, unknown>>;
    if (rows.length === 0) return;
    const byClass = new Map<string, unknown[]>();
    for (const r of rows) {
      const cls = lastClass(r.errors);
      if (cls === null) continue;
      const ids = byClass.get(cls) ?? [];
      ids.push(r[key]);
      byClass.set(cls, ids);
    }
    for (const [cls, ids] of byClass) await knex(table).whereIn(key, ids as Knex.Value[]).update({ last_error_class: cls });
    after = rows[rows.length - 1]![key];
  }
}

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  const collation = ctx.dialect.name === 'mysql' ? await exactCollation(knex) : null;
  for (const table of [`${p}tasks`, `${p}completed_tasks`]) {
    await knex.schema.alterTable(table, (t) => {
      const c = t.string('last_error_class', 190).nullable();
      if (collation) c.collate(collation);
    });
  }
  await backfill(knex, `${p}tasks`, 'id');
  await backfill(knex, `${p}completed_tasks`, 'task_id');
  await knex.raw(`CREATE INDEX ${p}tasks_enqueued ON ${p}tasks (enqueued_at, id)`);
  await knex.raw(`CREATE INDEX ${p}completed_enqueued ON ${p}completed_tasks (enqueued_at, task_id)`);
  await ctx.dialect.createIndex(knex, `${p}completed_tasks`, `${p}completed_failure_groups`, 'name, last_error_class, failed_at', 'failed_at IS NOT NULL');
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  const p = ctx.prefix;
  const drop = async (table: string, index: string) =>
    ctx.dialect.name === 'mysql' ? knex.raw(`DROP INDEX ${index} ON ${table}`) : knex.raw(`DROP INDEX ${index}`);
  await drop(`${p}completed_tasks`, `${p}completed_failure_groups`);
  await drop(`${p}completed_tasks`, `${p}completed_enqueued`);
  await drop(`${p}tasks`, `${p}tasks_enqueued`);
  for (const table of [`${p}tasks`, `${p}completed_tasks`]) {
    if (ctx.dialect.name === 'sqlite') {
      // SQLite: knex drops a column by copying the table, which the completed table's trigger refuses (see 004).
      await knex.raw(`ALTER TABLE "${table}" DROP COLUMN last_error_class`);
      continue;
    }
    await knex.schema.alterTable(table, (t) => t.dropColumn('last_error_class'));
  }
}

/**
 * Identifiers compare exactly on every database: task names, queue names, dedupe hashes, schedule
 * and lock keys, worker ids, claim tokens and creator references.
 *
 * MySQL/MariaDB: a VARCHAR takes the table's collation, and the servers' defaults
 * (utf8mb4_general_ci, utf8mb4_0900_ai_ci, utf8mb4_uca1400_ai_ci) ignore case and accents and, all
 * but the 0900 ones, trailing spaces: a worker registering `noop` claimed a row named `NOOP`,
 * `--queue mail` ran `MAIL`, `maíl` and `mail `, and the cron schedules of `report` and `Report`
 * shared one row. This migration gives every identifier column a binary collation without
 * padding: `utf8mb4_nopad_bin` on MariaDB (10.2+), `utf8mb4_0900_bin` on MySQL (8.0.17+). Each
 * ALTER keeps the column's type, length and NOT NULL exactly as 001 and 002 made them (none has a
 * default), and MODIFY keeps the indexes (they are rebuilt with the new order). Binary order is
 * finer than any case-insensitive one, so no unique key can be violated by the change. Each ALTER
 * commits on its own (MySQL DDL is not transactional): a failure half-way leaves the tables
 * usable, and running the migration again redoes every column.
 *
 * SQLite (BINARY) and PostgreSQL (deterministic collations) already compare these columns
 * exactly: there the migration changes nothing, and is recorded all the same.
 *
 * `down` gives the columns back the table's default collation, which is what 001 and 002 created
 * them with; it fails with a duplicate key if rows now differ only by case or trailing spaces
 * (schedules `report` and `Report`).
 *
 * Later migrations: on MySQL/MariaDB a new table or column takes the database's (or table's)
 * default collation, not this one. Give every identifier column of a new table or column the
 * collation `exactCollation()` returns (knex: `.collate(name)` on the column, with
 * `.charset('utf8mb4')`).
 */
import type { Knex } from 'knex';
import type { MigrationContext } from './index.js';

export const name = '003_exact_identifiers';

interface IdentifierColumn {
  column: string;
  /** The type exactly as 001/002 created it. */
  type: string;
  nullable: boolean;
}

const col = (column: string, length: number, nullable: boolean): IdentifierColumn => ({ column, type: `VARCHAR(${length})`, nullable });

/** Columns both task tables share (001's taskColumns). */
const TASK_IDENTIFIERS = [
  col('name', 190, false),
  col('hash', 40, false),
  col('queue', 190, true),
  col('creator_type', 190, true),
  col('creator_id', 190, true),
  col('recurring_key', 190, true),
];

/** Every identifier column of every bgtasks table, by table (without the prefix). */
export const IDENTIFIER_COLUMNS: Readonly<Record<string, readonly IdentifierColumn[]>> = {
  tasks: [...TASK_IDENTIFIERS, col('locked_by', 64, true), col('claim_token', 80, true)],
  completed_tasks: [...TASK_IDENTIFIERS, col('worker_id', 64, true)],
  locks: [col('key', 190, false)],
  schedules: [col('name', 190, false), col('key', 190, false), col('updated_by', 64, true)],
  schedule_slots: [col('name', 190, false), col('key', 190, false), col('task_id', 20, true)],
};

async function first(knex: Knex, sql: string, bindings: readonly Knex.RawBinding[] = []): Promise<Record<string, unknown> | undefined> {
  const [rows] = (await knex.raw(sql, bindings as Knex.RawBinding[])) as [Array<Record<string, unknown>>];
  return rows[0];
}

/**
 * The exact (binary, NO PAD) utf8mb4 collation of this MySQL or MariaDB server. Throws, naming
 * the server's version, when it has none (MySQL before 8.0.17).
 */
export async function exactCollation(knex: Knex): Promise<string> {
  const version = String((await first(knex, 'SELECT VERSION() AS v'))?.v ?? '');
  const wanted = /mariadb/i.test(version) ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';
  // Both are NO PAD by definition (MariaDB's information_schema has no PAD_ATTRIBUTE column).
  const found = await first(knex, 'SELECT COLLATION_NAME AS c FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?', [wanted]);
  if (!found) {
    throw new Error(
      `bgtasks migration ${name}: the server (version ${version}) has no collation ${wanted}, which exact identifiers need — bgtasks supports MariaDB 10.6+ and MySQL 8.0.17+`,
    );
  }
  return wanted;
}

/** The collation (and its character set) a table gives new columns. */
async function tableDefault(knex: Knex, table: string): Promise<{ charset: string; collation: string }> {
  const row = await first(
    knex,
    `SELECT c.CHARACTER_SET_NAME AS cs, t.TABLE_COLLATION AS co FROM information_schema.TABLES t
     JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION
     WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = ?`,
    [table],
  );
  if (!row) throw new Error(`bgtasks migration ${name}: table ${table} not found in the current database`);
  return { charset: String(row.cs), collation: String(row.co) };
}

/** One ALTER per table (one rebuild), every identifier column in the given collation. */
async function alterTables(knex: Knex, prefix: string, collationOf: (table: string) => Promise<{ charset: string; collation: string }>): Promise<void> {
  for (const [suffix, columns] of Object.entries(IDENTIFIER_COLUMNS)) {
    const table = `${prefix}${suffix}`;
    const { charset, collation } = await collationOf(table);
    const clauses = columns.map((c) => `MODIFY ?? ${c.type} CHARACTER SET ${charset} COLLATE ${collation} ${c.nullable ? 'NULL' : 'NOT NULL'}`);
    await knex.raw(`ALTER TABLE ?? ${clauses.join(', ')}`, [table, ...columns.map((c) => c.column)]);
  }
}

export async function up(knex: Knex, ctx: MigrationContext): Promise<void> {
  if (ctx.dialect.name !== 'mysql') return;
  const collation = await exactCollation(knex);
  await alterTables(knex, ctx.prefix, async () => ({ charset: 'utf8mb4', collation }));
}

export async function down(knex: Knex, ctx: MigrationContext): Promise<void> {
  if (ctx.dialect.name !== 'mysql') return;
  await alterTables(knex, ctx.prefix, (table) => tableDefault(knex, table));
}

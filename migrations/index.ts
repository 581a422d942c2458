/**
 * What a migration receives: the table prefix, and the few things that differ by database which
 * the schema needs. Declared here, not imported from core/: migrations stay at the bottom of the
 * house and depend on nothing that later versions may change. The list of migrations, in order,
 * is migrations/list.ts.
 */
import type { Knex } from 'knex';

/** The dialect methods a migration may use (core/store/dialects/ implements them). */
export interface MigrationDialect {
  readonly name: 'sqlite' | 'mysql' | 'postgres';
  /** Creates an index; `where` makes it partial where the database supports that. */
  createIndex(knex: Knex, table: string, name: string, columnsSql: string, where?: string): Promise<void>;
  /** Schema that only this database needs (triggers, functions), created by the initial migration. */
  extraSchema(knex: Knex, tables: { tasks: string; completed: string }, direction: 'up' | 'down'): Promise<void>;
}

export interface MigrationContext {
  prefix: string;
  dialect: MigrationDialect;
}

export interface Migration {
  name: string;
  up(knex: Knex, ctx: MigrationContext): Promise<void>;
  down(knex: Knex, ctx: MigrationContext): Promise<void>;
}

/**
 * What a contract suite's tables hold, read straight from them: for asserting what a call stored,
 * or that it stored nothing.
 */
import type { TestDatabase } from './databases.js';

/** The number of rows in `table`. */
export async function countRows(db: TestDatabase, table: string): Promise<number> {
  return Number(((await db.store.knex(table).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
}

/** Every row of the tasks table (tasks not yet finished), in id order. */
export async function taskRows(db: TestDatabase): Promise<Array<Record<string, unknown>>> {
  return (await db.store.knex(db.store.tables.tasks).select('*').orderBy('id')) as Array<Record<string, unknown>>;
}

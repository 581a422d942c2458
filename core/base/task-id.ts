/**
 * What a task id can be: a positive integer, as a string, within the databases' id range. Ids
 * are signed 64-bit on PostgreSQL and SQLite (unsigned on MySQL/MariaDB, whose counter never gets
 * there); PostgreSQL refuses a larger one in a query ("out of range for type bigint"), so such an
 * id is malformed on every database, wherever it comes from (the API, the CLI, a dashboard URL).
 */
export const MAX_TASK_ID = 9223372036854775807n;

export function isTaskIdText(s: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(s) && BigInt(s) <= MAX_TASK_ID;
}

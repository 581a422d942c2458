/**
 * "The stored text contains this substring, exactly as stored" differs on every database: SQLite's
 * LIKE ignores ASCII case, and MySQL/MariaDB compare a LONGTEXT in the table's collation (which
 * ignores case and accents). Each form here is a byte-exact substring test that needs no escaping.
 */
import type { Knex } from 'knex';
import type { DialectName } from '../../config/database-spec.js';

/** Adds "`column` contains `text`" (case- and accent-sensitive) to `q`. */
export function whereContains(q: Knex.QueryBuilder, dialect: DialectName, column: string, text: string): Knex.QueryBuilder {
  switch (dialect) {
    case 'sqlite':
      return q.whereRaw('instr(??, ?) > 0', [column, text]);
    case 'postgres':
      return q.whereRaw('strpos(??, ?) > 0', [column, text]);
    case 'mysql':
      // MySQL: the column's collation ignores case; comparing bytes does not.
      return q.whereRaw('INSTR(CAST(?? AS BINARY), CAST(? AS BINARY)) > 0', [column, text]);
  }
}

/** The dialect loader map: an unknown name is an error, never a silent fallback. */
import type { DialectName } from '../../config/database-spec.js';
import type { Dialect } from './dialect.js';
import { mysqlDialect } from './mysql.js';
import { postgresDialect } from './postgres.js';
import { sqliteDialect } from './sqlite.js';

const DIALECTS: Record<DialectName, Dialect> = {
  sqlite: sqliteDialect,
  mysql: mysqlDialect,
  postgres: postgresDialect,
};

export function dialectFor(name: DialectName): Dialect {
  const d = DIALECTS[name];
  if (!d) throw new Error(`No dialect named ${JSON.stringify(name)}; expected one of ${Object.keys(DIALECTS).join(', ')}`);
  return d;
}

export type { Dialect };

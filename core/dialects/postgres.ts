/**
 * PostgreSQL: the claim is one statement, a `FOR UPDATE SKIP LOCKED` CTE feeding an UPDATE. The
 * CTE is used rather than `WHERE id IN (subquery)` because PostgreSQL may re-run an IN-subquery
 * with LIMIT and claim more rows than asked for; a locking CTE is evaluated exactly once.
 */
import type { Knex } from 'knex';
import { errorCode, isConnectionFailure, type ClaimSet, type Db, type Dialect, type ErrorKind } from './dialect.js';

const RETRY_CODES = new Set(['40P01', '40001', '55P03']);
const CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300']);

export const postgresDialect: Dialect = {
  name: 'postgres',

  prepareConfig(config) {
    return { ...config, pool: { min: 0, max: 10, ...(config.pool ?? {}) } };
  },

  prepareExternal() {},

  async claim(knex, table, candidates, set: ClaimSet) {
    const sub = candidates.forUpdate().skipLocked().toSQL();
    const result = await knex.raw(
      `WITH c AS (${sub.sql})
       UPDATE ?? AS t SET locked_by = ?, claim_token = ? || t.id::text, locked_at = ?, locked_until = ?, attempts = t.attempts + 1
       FROM c WHERE t.id = c.id
       RETURNING t.*`,
      [...sub.bindings, table, set.workerId, `${set.token}:`, set.nowMs, set.leaseUntilMs],
    );
    return (result as { rows: Record<string, unknown>[] }).rows;
  },

  async insertReturningIds(db: Db, table, rows) {
    const out = (await db(table).insert(rows).returning('id')) as Array<{ id: number | string }>;
    return out.map((r) => String(r.id));
  },

  async createIndex(knex, table, name, columnsSql, where) {
    await knex.raw(`CREATE INDEX ${name} ON ${table} (${columnsSql})${where ? ` WHERE ${where}` : ''}`);
  },

  async serverTimeMs(knex) {
    const r = await knex.raw('SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS t');
    return Number((r as { rows: Array<{ t: string }> }).rows[0]!.t);
  },

  classifyError(err): ErrorKind | null {
    const code = errorCode(err);
    if (RETRY_CODES.has(code)) return 'retry';
    if (code === '23505') return 'unique';
    if (code === '42P01') return 'missing-table';
    if (CONNECTION_CODES.has(code) || isConnectionFailure(err)) return 'connection';
    return null;
  },
};

export type { Knex };

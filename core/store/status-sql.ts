/**
 * The READY/RUNNING rule of policy/status.ts as conditions on the pending table, for the queries
 * that count or filter by status. A claimed row whose lease ran out is READY in both forms.
 */
import type { Knex } from 'knex';

/** RUNNING: claimed under a live lease. */
export function whereRunning(q: Knex.QueryBuilder, nowMs: number): Knex.QueryBuilder {
  return q.whereNotNull('locked_by').where('locked_until', '>', nowMs);
}

/** READY: unclaimed, or claimed under a lease that ran out. */
export function whereReady(q: Knex.QueryBuilder, nowMs: number): Knex.QueryBuilder {
  return q.where((b) => b.whereNull('locked_by').orWhere('locked_until', '<=', nowMs));
}

/** Claimed, but READY again: the lease ran out (the task waits since `locked_until`). */
export function whereLeaseRanOut(q: Knex.QueryBuilder, nowMs: number): Knex.QueryBuilder {
  return q.whereNotNull('locked_by').where('locked_until', '<=', nowMs);
}

/**
 * The same two rules as SQL expressions with their bindings, for one query that counts both
 * statuses at once (the queue-depth metrics): RUNNING, and READY (its negation).
 */
export function runningSql(nowMs: number): { sql: string; bindings: number[] } {
  return { sql: '(locked_by IS NOT NULL AND locked_until > ?)', bindings: [nowMs] };
}

export function readySql(nowMs: number): { sql: string; bindings: number[] } {
  return { sql: '(locked_by IS NULL OR locked_until <= ?)', bindings: [nowMs] };
}

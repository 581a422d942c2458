/**
 * The RUNNING tasks of workers whose registry heartbeat went stale: candidates for recovery
 * before their lease runs out. The store only finds them and guards the write; whether the
 * worker is really gone is decided by the caller (worker/maintenance.ts), because a worker whose
 * event loop is blocked stops its registry heartbeat too: either its process is known to be gone
 * (on this machine), or its liveness beat, which a thread sends, stopped as well (it is silent).
 * The staleness rule is policy/status.ts deadWorkerAfterMs, and the silence rule
 * policy/liveness.ts isSilent, written here in SQL.
 */
import type { Knex } from 'knex';
import { DEAD_WORKER_FLOOR_MS, WORKER_MISSED_BEATS } from '../policy/status.js';
import type { TaskRow } from '../types.js';
import { toTaskRow } from './rows.js';
import type { Tables } from './tables.js';

/** A RUNNING task whose worker stopped beating, with what the registry says of that worker. */
export interface DeadWorkerLease {
  task: TaskRow;
  host: string;
  pid: number | null;
  pidNamespace: string | null;
  heartbeatAt: number;
  heartbeatMs: number;
  /** Its liveness beat (policy/liveness.ts); null for a worker without one. */
  aliveAt: number | null;
  livenessMs: number | null;
}

/**
 * `heartbeat_at + max(3 × heartbeat_ms, floor) < now` on the registry row: CASE instead of
 * GREATEST, which SQLite lacks (its max() is not portable either).
 */
function staleBeat(knex: Knex, column: (c: string) => string, nowMs: number): Knex.Raw {
  const hb = column('heartbeat_ms');
  return knex.raw(`?? + CASE WHEN ${WORKER_MISSED_BEATS} * ?? > ? THEN ${WORKER_MISSED_BEATS} * ?? ELSE ? END < ?`, [
    column('heartbeat_at'),
    hb,
    DEAD_WORKER_FLOOR_MS,
    hb,
    DEAD_WORKER_FLOOR_MS,
    nowMs,
  ]);
}

/**
 * The ids of registered workers that are stale at `nowMs` (a subquery for a guarded write). A
 * worker that said goodbye on a clean stop (stopped_at) is not: it gave back what it held, and
 * what it could not give back waits for its lease, as its stop says in its log.
 */
export function staleWorkerIds(knex: Knex, tables: Tables, nowMs: number): Knex.QueryBuilder {
  return knex(tables.workers).select('id').whereNull('stopped_at').where(staleBeat(knex, (c) => c, nowMs));
}

/**
 * The ids of registered workers that are silent at `nowMs` (a subquery for a guarded write):
 * `alive_at + liveness_ms < now` and a stale registry heartbeat (policy/liveness.ts isSilent). A
 * row without a liveness beat (NULL) is never silent.
 */
export function silentWorkerIds(knex: Knex, tables: Tables, nowMs: number): Knex.QueryBuilder {
  return knex(tables.workers)
    .select('id')
    .whereNotNull('alive_at')
    .whereNotNull('liveness_ms')
    .whereNull('stopped_at')
    .where(knex.raw('?? + ?? < ?', ['alive_at', 'liveness_ms', nowMs]))
    .where(staleBeat(knex, (c) => c, nowMs));
}

/**
 * Claims under a lease that has not run out yet whose worker's registry row is stale, oldest
 * heartbeat first. A worker with no row (never registered, or pruned) is not listed: nothing
 * says it is gone, so its leases simply run out; nor is one that stopped cleanly (staleWorkerIds).
 *
 * The registry alone is asked first whether any worker is stale: usually none is, and the
 * running tasks are read through the lease index, which also holds the entries of tasks run
 * within a lease that vacuum or purge has not removed yet (LONGTX-01: 430-460 ms on PostgreSQL
 * beside a long transaction, at every pass).
 */
export async function deadWorkerLeases(knex: Knex, tables: Tables, nowMs: number, limit = 100): Promise<DeadWorkerLease[]> {
  const w = tables.workers;
  if ((await staleWorkerIds(knex, tables, nowMs).limit(1)).length === 0) return [];
  const rows = (await knex(tables.tasks)
    .join(w, `${w}.id`, `${tables.tasks}.locked_by`)
    .select(`${tables.tasks}.*`, {
      w_host: `${w}.host`,
      w_pid: `${w}.pid`,
      w_ns: `${w}.pid_ns`,
      w_beat: `${w}.heartbeat_at`,
      w_beat_ms: `${w}.heartbeat_ms`,
      w_alive: `${w}.alive_at`,
      w_liveness: `${w}.liveness_ms`,
    })
    .whereNotNull(`${tables.tasks}.locked_by`)
    .where(`${tables.tasks}.locked_until`, '>=', nowMs)
    .whereNull(`${w}.stopped_at`)
    .where(staleBeat(knex, (c) => `${w}.${c}`, nowMs))
    .orderBy([{ column: `${w}.heartbeat_at` }, { column: `${tables.tasks}.id` }])
    .limit(limit)) as Array<Record<string, unknown>>;
  return rows.map((r) => {
    const { w_host, w_pid, w_ns, w_beat, w_beat_ms, w_alive, w_liveness, ...task } = r;
    return {
      task: toTaskRow(task),
      host: String(w_host),
      pid: w_pid === null || w_pid === undefined ? null : Number(w_pid),
      pidNamespace: w_ns === null || w_ns === undefined ? null : String(w_ns),
      heartbeatAt: Number(w_beat),
      heartbeatMs: Number(w_beat_ms),
      aliveAt: w_alive === null || w_alive === undefined ? null : Number(w_alive),
      livenessMs: w_liveness === null || w_liveness === undefined ? null : Number(w_liveness),
    };
  });
}

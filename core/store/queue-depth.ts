/**
 * Queue depth for the metrics endpoint: per queue, the pending tasks by status, how many READY
 * ones are due now, and the run time of the oldest due one, from one aggregate statement over the
 * pending table (the finished table, which grows with every task, is never read). Its callers
 * cache the answer (core/api/metrics.ts): a scrape never reaches the database more than once per
 * cache period.
 */
import type { Store } from './store.js';
import { readySql, runningSql } from './status-sql.js';

export interface QueueDepth {
  /** Null: tasks without a queue. */
  queue: string | null;
  ready: number;
  running: number;
  /** READY and due now (run time passed). */
  due: number;
  /** Run time (epoch ms) of the oldest due READY task; null when none is due. */
  oldestDueAt: number | null;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

export async function queueDepth(store: Store, nowMs: number): Promise<QueueDepth[]> {
  const running = runningSql(nowMs);
  const ready = readySql(nowMs);
  const dueSql = `${ready.sql} AND run_at <= ?`;
  const k = store.knex;
  const rows = (await store.retrying(() =>
    k(store.tables.tasks)
      .select('queue')
      .select(k.raw('COUNT(*) AS total'))
      .select(k.raw(`SUM(CASE WHEN ${running.sql} THEN 1 ELSE 0 END) AS running`, running.bindings))
      .select(k.raw(`SUM(CASE WHEN ${dueSql} THEN 1 ELSE 0 END) AS due`, [...ready.bindings, nowMs]))
      .select(k.raw(`MIN(CASE WHEN ${dueSql} THEN run_at END) AS oldest_due`, [...ready.bindings, nowMs]))
      .groupBy('queue'),
  )) as Array<Record<string, unknown>>;
  return rows.map((r) => {
    const total = num(r.total);
    const run = num(r.running);
    return {
      queue: r.queue === null || r.queue === undefined ? null : String(r.queue),
      ready: total - run,
      running: run,
      due: num(r.due),
      oldestDueAt: r.oldest_due === null || r.oldest_due === undefined ? null : Number(r.oldest_due),
    };
  });
}

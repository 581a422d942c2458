/**
 * The targets of issue 8, each checked against one measurement (by scenario and key) on one
 * database. A target whose measurement is missing (scenario or database not run) is reported as
 * not measured, never as met.
 */
import type { DbName } from './databases.js';
import type { Measurement } from './scenario.js';

export interface Target {
  label: string;
  scenario: string;
  key: string;
  /** The bound per database; databases without one are not checked. */
  bound: Partial<Record<DbName, number>>;
  direction: '>=' | '<=';
}

const ALL_DBS = (v: number): Record<DbName, number> => ({ sqlite: v, mysql: v, postgres: v });

export const TARGETS: Target[] = [
  { label: 'Processing, 1 process, concurrency 16 (tasks/s)', scenario: 'process', key: 'c16', bound: { sqlite: 21_000, mysql: 10_000, postgres: 23_000 }, direction: '>=' },
  { label: 'Processing, 1 process, concurrency 1 (tasks/s)', scenario: 'process', key: 'c1', bound: { sqlite: 1_500, mysql: 1_000, postgres: 1_000 }, direction: '>=' },
  { label: 'Enqueue with bulk() (tasks/s)', scenario: 'enqueue', key: 'bulk', bound: { sqlite: 150_000, mysql: 100_000, postgres: 90_000 }, direction: '>=' },
  { label: 'Enqueue, single calls ÷ bare knex insert', scenario: 'enqueue', key: 'single-vs-bare', bound: ALL_DBS(0.8), direction: '>=' },
  { label: 'Latency, --sleep 0.01, p50 (ms)', scenario: 'latency', key: 'fast-p50', bound: ALL_DBS(10), direction: '<=' },
  { label: 'Latency, --sleep 0.01, p99 (ms)', scenario: 'latency', key: 'fast-p99', bound: ALL_DBS(25), direction: '<=' },
  { label: 'Latency, default --sleep, p50 (ms; LISTEN/NOTIFY)', scenario: 'latency', key: 'default-p50', bound: { postgres: 5 }, direction: '<=' },
  { label: 'Claim cost, 1M not-due rows ÷ empty table', scenario: 'scale', key: 'claim-ratio', bound: ALL_DBS(2), direction: '<=' },
  { label: 'Prune of 1M results, longest writing statement (ms)', scenario: 'scale', key: 'prune-longest', bound: ALL_DBS(200), direction: '<=' },
  { label: 'Flow: per-key limit 1 over 100 keys ÷ no limits (throughput)', scenario: 'flow', key: 'keyed-ratio', bound: ALL_DBS(0.5), direction: '>=' },
  { label: 'Flow: claim beside 1M due tasks of a paused queue ÷ empty table', scenario: 'flow', key: 'paused-ratio', bound: ALL_DBS(2), direction: '<=' },
  { label: 'Memory, RSS after 100k ÷ after 1k tasks', scenario: 'memory', key: 'rss-ratio', bound: ALL_DBS(1.1), direction: '<=' },
  { label: 'Worker throughput with metrics ÷ without', scenario: 'metrics', key: 'ratio', bound: ALL_DBS(0.97), direction: '>=' },
  { label: '/metrics queue gauges, cached scrape (ms)', scenario: 'metrics', key: 'depth-scrape', bound: ALL_DBS(20), direction: '<=' },
  { label: 'Cold start, process start → first claim (ms)', scenario: 'cold-start', key: 'first-claim', bound: ALL_DBS(400), direction: '<=' },
  // Issue 19.
  { label: 'Cold start, process start → first claim (ms; issue 19)', scenario: 'cold-start', key: 'first-claim', bound: ALL_DBS(250), direction: '<=' },
  { label: 'worker.start() → first claim (ms)', scenario: 'startup', key: 'start-to-claim', bound: ALL_DBS(50), direction: '<=' },
  { label: 'CLI as typed (--batch --concurrency 16, default logging) ÷ the worker in process', scenario: 'startup', key: 'cli-ratio', bound: ALL_DBS(0.9), direction: '>=' },
  // Issue 18's soak LONGTX-01 (only with --soak).
  { label: 'LONGTX-01: throughput beside a transaction held open ÷ a clean run', scenario: 'longtx', key: 'ratio', bound: { mysql: 0.9, postgres: 0.9 }, direction: '>=' },
];

export interface TargetResult {
  target: Target;
  db: DbName;
  bound: number;
  measurement: Measurement | null;
  met: boolean | null;
}

/** The targets of the scenarios that ran, on the databases that ran. */
export function evaluateTargets(measurements: readonly Measurement[], dbs: readonly DbName[], scenarios: readonly string[]): TargetResult[] {
  const out: TargetResult[] = [];
  for (const target of TARGETS.filter((x) => scenarios.includes(x.scenario))) {
    for (const db of dbs) {
      const bound = target.bound[db];
      if (bound === undefined) continue;
      const m = measurements.find((x) => x.scenario === target.scenario && x.key === target.key && x.db === db) ?? null;
      const met = m === null || !Number.isFinite(m.value) ? null : target.direction === '>=' ? m.value >= bound : m.value <= bound;
      out.push({ target, db, bound, measurement: m, met });
    }
  }
  return out;
}

/**
 * The flow lock and the flow time. Every flow claim of every worker takes one lock row first
 * (store/claim.ts), so the flow path claims one worker at a time (except SQLite's claims where
 * the only limit is one per key, which need no lock: store/flow-claim.ts); the row's
 * `locked_at` keeps the flow time: the latest time that rate-limit starts were recorded at
 * (policy/flow.ts flowTime) or that the prune deleted up to. Taking the lock moves it forward,
 * never back.
 */
import type { Knex } from 'knex';
import { flowTime } from '../policy/flow.js';
import type { Tables } from './tables.js';

/** The key of the lock row (in `<prefix>locks`; pruneLocks leaves keys of this kind alone). */
export const FLOW_LOCK = 'flow:claim';

/** Takes the flow lock until the transaction ends; the flow time moves to `nowMs` if that is later. */
export async function lockFlow(trx: Knex.Transaction, tables: Tables, nowMs: number): Promise<void> {
  const at = `${tables.locks}.locked_at`;
  await trx(tables.locks)
    .insert({ key: FLOW_LOCK, locked_at: nowMs })
    .onConflict('key')
    .merge({ locked_at: trx.raw('CASE WHEN ?? > ? THEN ?? ELSE ? END', [at, nowMs, at, nowMs]) });
}

/** The flow time of a claim whose worker's clock reads `clockMs`; the flow lock must be held. */
export async function readFlowTime(trx: Knex.Transaction, tables: Tables, clockMs: number): Promise<number> {
  const row = (await trx(tables.locks).select('locked_at').where('key', FLOW_LOCK).first()) as { locked_at: unknown } | undefined;
  return flowTime(clockMs, row ? Number(row.locked_at) : null);
}

/** Records the flow time a claim recorded its starts at; the flow lock must be held. */
export async function setFlowTime(trx: Knex.Transaction, tables: Tables, ms: number): Promise<void> {
  await trx(tables.locks).where('key', FLOW_LOCK).update({ locked_at: ms });
}

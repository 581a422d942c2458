/**
 * The liveness beat's thread, started by worker/liveness.ts: on a connection of its own (a pool
 * of one), it writes the worker's `alive_at` every livenessBeatMs, and records in the shared
 * state (liveness-state.ts) each beat that landed. It runs on its own event loop, so a task that
 * blocks the worker's loop does not stop it; a process that is killed or stopped takes it along,
 * and a network that no longer reaches the database stops its beats from landing.
 *
 * It only beats: what a silence means, for this worker (the fence) and for the others (recovery),
 * is decided on the worker's loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DatabaseSpec } from '../config/database-spec.js';
import { livenessBeatMs, livenessFenceMs, livenessGapMs } from '../policy/liveness.js';
import { closeConnection, connectPrivate, type Connection } from '../store/connection.js';
import type { Timeouts } from '../store/dialects/timeouts.js';
import { tablesFor } from '../store/tables.js';
import { beatAlive } from '../store/workers.js';
import { LivenessState, realNowMs } from './liveness-state.js';

/** What the thread is started with (structured-cloned: plain data only). */
export interface LivenessThreadData {
  spec: DatabaseSpec;
  tablePrefix: string;
  workerId: string;
  timeoutMs: number;
  timeouts: Timeouts;
  state: SharedArrayBuffer;
}

/** Posted to the worker's loop: the first failure after a beat that landed (for its warning). */
export interface LivenessThreadMessage {
  failed: string;
}

async function run(d: LivenessThreadData): Promise<void> {
  const state = new LivenessState(d.state);
  let stopping = false;
  let wake: (() => void) | null = null;
  parentPort!.on('message', (m: unknown) => {
    if (m !== 'stop') return;
    stopping = true;
    wake?.();
  });
  // The port alone must not keep the thread alive once the loop below has ended.
  parentPort!.unref();
  const spec: DatabaseSpec = { ...d.spec, config: { ...d.spec.config, pool: { min: 0, max: 1 } } };
  const conn: Connection = await connectPrivate(spec, d.timeouts);
  const db = { knex: conn.knex, tables: tablesFor(d.tablePrefix) };
  const everyMs = livenessBeatMs(d.timeoutMs);
  const gapMs = livenessGapMs(d.timeoutMs);
  const fenceMs = livenessFenceMs(d.timeoutMs);
  let failing = false;
  try {
    while (!stopping) {
      const sentAt = realNowMs();
      try {
        if (await beatAlive(db, d.workerId, Math.round(Date.now() + state.offsetMs), d.timeoutMs)) {
          state.landed(sentAt, gapMs, fenceMs);
          failing = false;
        } else if (!failing) {
          failing = true;
          parentPort!.postMessage({ failed: "the worker's registry row is missing (it is written again at the next registry heartbeat)" } satisfies LivenessThreadMessage);
        }
      } catch (err) {
        if (!failing) parentPort!.postMessage({ failed: err instanceof Error ? err.message : String(err) } satisfies LivenessThreadMessage);
        failing = true;
      }
      const wait = sentAt + everyMs - realNowMs();
      if (wait > 0 && !stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    }
  } finally {
    await closeConnection(conn).catch(() => {});
  }
}

await run(workerData as LivenessThreadData);

/**
 * `bgtasks workers`: the worker registry: every live worker (id, host, pid, version, queues,
 * concurrency, the tasks it runs with their age, its last heartbeat), and with --all the workers
 * gone within the last day (stopped, or lost: their heartbeat stopped without a goodbye).
 */
import { currentClock } from '../../core/base/clock.js';
import { isLiveState, workerState } from '../../core/policy/status.js';
import { listWorkers, runningByWorker } from '../../core/store/workers.js';
import { EXIT } from '../exit-codes.js';
import { duration, iso, json, line, table } from '../format.js';
import { openStore, type StoreFlags } from '../open-store.js';

const DAY_MS = 86_400_000;

export async function workersCommand(flags: StoreFlags & { all?: boolean }): Promise<number> {
  const { store } = await openStore(flags);
  const now = currentClock().now();
  const records = await listWorkers(store, now - DAY_MS);
  const running = await runningByWorker(store, now);
  const list = records
    .map((w) => ({ ...w, state: workerState(w, now), running: running.get(w.id) ?? [] }))
    .filter((w) => flags.all || isLiveState(w.state));
  if (flags.json) {
    json(
      list.map((w) => ({
        ...w,
        startedAt: new Date(w.startedAt),
        heartbeatAt: new Date(w.heartbeatAt),
        stoppedAt: w.stoppedAt === null ? null : new Date(w.stoppedAt),
        aliveAt: w.aliveAt === null || w.aliveAt === undefined ? null : new Date(w.aliveAt),
      })),
    );
    return EXIT.OK;
  }
  if (list.length === 0) {
    line(flags.all ? 'No worker has run in the last day.' : 'No live worker (bgtasks workers --all lists those gone within the last day).');
    return EXIT.OK;
  }
  line(
    table(
      ['WORKER', 'STATE', 'PID', 'VERSION', 'QUEUES', 'CONCURRENCY', 'RUNNING', 'LAST HEARTBEAT'],
      list.map((w) => [
        w.id,
        w.state,
        w.pid === null ? '-' : String(w.pid),
        w.version ?? '-',
        w.queues ? w.queues.join(',') : w.excludeQueues?.length ? `all but ${w.excludeQueues.join(',')}` : 'all',
        String(w.concurrency),
        w.running.length === 0 ? '-' : w.running.map((t) => `#${t.id} ${t.name} (${duration((now - t.startedAt) / 1000)})`).join(', '),
        `${iso(w.heartbeatAt)} (${duration((now - w.heartbeatAt) / 1000)} ago)`,
      ]),
      [5],
    ),
  );
  return EXIT.OK;
}

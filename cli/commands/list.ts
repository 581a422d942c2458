/** `bgtasks list`: tasks by state, queue, name and creator; a table, or JSON. */
import { currentClock } from '../../core/base/clock.js';
import { findTasks } from '../../core/api/queries.js';
import type { TaskResult } from '../../core/api/handle.js';
import { numberFlag } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { iso, json, line, queueLabel, statusLabel, table, truncate, unreadableLabel } from '../format.js';
import { parseCreator, parseList, parseStates } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export interface ListFlags extends StoreFlags {
  state?: string;
  queue?: string;
  name?: string;
  creator?: string;
  limit?: string;
}

/**
 * A task as `list --json` prints it. Arguments whose stored text cannot be read are `null`, with
 * the text and why in `unreadable` (null for every other task): one such row never fails the list.
 */
export function listEntry(t: TaskResult) {
  const unreadable = t.unreadable;
  return {
    id: t.id,
    name: t.name,
    status: t.status,
    queue: t.queue,
    priority: t.priority,
    attempts: t.attempts,
    args: unreadable?.args ? null : t.args,
    verboseName: t.verboseName,
    creator: t.creator,
    enqueuedAt: t.enqueuedAt,
    runAt: t.runAt,
    startedAt: t.startedAt,
    finishedAt: t.finishedAt,
    workerId: t.workerId,
    hasError: t.hasError,
    unreadable,
  };
}

export async function listCommand(flags: ListFlags): Promise<number> {
  const state = parseStates(flags.state);
  const queue = parseList(flags.queue, '--queue', 'queue names');
  const name = parseList(flags.name, '--name', 'task names');
  const creator = parseCreator(flags.creator);
  const limit = numberFlag(flags.limit ?? '50', '--limit', `an integer from 1 to ${Number.MAX_SAFE_INTEGER}`, (n) => Number.isSafeInteger(n) && n >= 1)!;
  const { store } = await openStore(flags);
  const tasks = await findTasks(store, {
    ...(state ? { state } : {}),
    ...(queue ? { queue } : {}),
    ...(name ? { name } : {}),
    ...(creator ? { creator } : {}),
    limit,
  });
  if (flags.json) {
    json(tasks.map(listEntry));
    return EXIT.OK;
  }
  if (tasks.length === 0) {
    line('No tasks match.');
    return EXIT.OK;
  }
  const now = currentClock().now();
  const rows = tasks.map((t) => [
    t.id,
    statusLabel(t.status),
    truncate(t.name, 40),
    truncate(queueLabel(t.queue), 20),
    String(t.priority),
    String(t.attempts),
    // The time that matters for each state: when it runs, since when it runs, when it ended.
    t.status === 'READY'
      ? `${t.runAt.getTime() > now ? 'runs' : 'due'} ${iso(t.runAt)}`
      : t.status === 'RUNNING'
        ? `started ${iso(t.startedAt)}`
        : `ended ${iso(t.finishedAt)}`,
    truncate(argsCell(t), 50),
  ]);
  line(table(['ID', 'STATUS', 'NAME', 'QUEUE', 'PRIORITY', 'ATTEMPTS', 'TIME (UTC)', 'ARGS'], rows, [4, 5]));
  if (tasks.length === limit) line(`(first ${limit}; use --limit for more)`);
  return EXIT.OK;
}

/** The ARGS cell: the arguments as JSON, or the stored text marked with why it cannot be read. */
function argsCell(t: TaskResult): string {
  const bad = t.unreadable?.args;
  return bad ? unreadableLabel(bad) : JSON.stringify(t.args);
}

/** `bgtasks show ID`: everything stored about one task: status, call, times, worker, errors, result. */
import { currentClock } from '../../core/base/clock.js';
import { taskDetail, type TaskDetail } from '../../core/store/task-detail.js';
import { EXIT } from '../exit-codes.js';
import { duration, indent, iso, json, line, queueLabel, statusLabel, unreadableLabel } from '../format.js';
import { parseIds } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

export async function showCommand(id: string, flags: StoreFlags): Promise<number> {
  const [taskId] = parseIds([id]);
  const { store } = await openStore(flags);
  const d = await taskDetail(store, taskId!, currentClock().now());
  if (flags.json) json(d);
  else printDetail(d);
  return EXIT.OK;
}

function printDetail(d: TaskDetail): void {
  const field = (label: string, value: string) => line(`${`${label}:`.padEnd(16)}${value}`);
  line(`Task #${d.id}  ${d.name}${d.verboseName ? `  (${d.verboseName})` : ''}`);
  field('status', statusLabel(d.status) + (d.cancelRequested ? ' (cancel requested)' : ''));
  field('queue', queueLabel(d.queue));
  field('priority', String(d.priority));
  field('attempts', d.maxAttempts === null ? String(d.attempts) : `${d.attempts} of at most ${d.maxAttempts}`);
  if (d.creator) field('creator', `${d.creator.type}:${d.creator.id}`);
  const bad = d.unreadable ?? {};
  field('args', bad.args ? unreadableLabel(bad.args, true) : JSON.stringify(d.args));
  field('hash', d.hash);
  field('enqueued', iso(d.enqueuedAt));
  field('scheduled', iso(d.scheduledAt));
  field('run at', iso(d.runAt));
  if (d.startedAt) field('started', iso(d.startedAt));
  if (d.finishedAt) {
    const took = d.startedAt ? ` (took ${duration((d.finishedAt.getTime() - d.startedAt.getTime()) / 1000)})` : '';
    field(d.status === 'FAILED' ? 'failed' : 'finished', iso(d.finishedAt) + took);
  }
  if (d.expiresAt) field('expires', iso(d.expiresAt));
  if (d.workerId) field('worker', d.workerId);
  if (d.leaseUntil) field('lease until', iso(d.leaseUntil));
  if (d.repeat) {
    const every = d.repeat.cron !== null ? `cron "${d.repeat.cron}"${d.repeat.timezone ? ` (${d.repeat.timezone})` : ''}` : `every ${duration(d.repeat.everySeconds ?? 0)}`;
    field('repeat', every + (d.repeat.until ? ` until ${iso(d.repeat.until)}` : ''));
  }
  if (d.status === 'SUCCESSFUL') {
    const value = d.returnValue === null ? '(none)' : JSON.stringify(d.returnValue, null, 2).replace(/\n/g, `\n${' '.repeat(16)}`);
    field('return value', bad.returnValue ? unreadableLabel(bad.returnValue, true) : value);
  }
  if (bad.errors) field('errors', unreadableLabel(bad.errors, true));
  const errors = d.errors ?? [];
  if (errors.length === 0 && d.lastError) {
    line('last error:');
    line(indent(d.lastError));
  }
  if (errors.length > 0) {
    line(`errors (${errors.length}, oldest first):`);
    for (const e of errors) {
      line(`  attempt ${e.attempt} at ${iso(e.at)}${e.workerId ? ` on ${e.workerId}` : ''}: ${e.exceptionClass}: ${e.message}`);
      line(indent(e.traceback, '      '));
    }
  }
}

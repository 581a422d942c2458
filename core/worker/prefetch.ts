/**
 * The prefetch buffer: tasks a worker claimed ahead of its free slots, kept in claim order
 * (priority, then run time, then id), and how long ago the database was last asked for due tasks.
 *
 * A prefetched task must not make a task of higher priority that became due after the claim wait
 * behind it. Claims that bring such a task merge it in at its rank; and a task that waited in the
 * buffer longer than PRIORITY_RECHECK_MS is started only after the worker has looked again (see
 * Claimer.recheckPriorities), so prefetching delays a higher-priority task by at most that long.
 */
import type { TaskRow } from '../types.js';
import { Fifo } from './fifo.js';

/**
 * Milliseconds a prefetched task may wait before it is started without looking for due tasks of
 * higher priority first (or `sleep`, if shorter). The auto prefetch holds about 100 ms of work per
 * slot, so a busy worker claims more often than this and never looks separately; a worker whose
 * slots hold long tasks looks once per freed slot.
 */
export const PRIORITY_RECHECK_MS = 100;

export class PrefetchBuffer {
  private readonly fifo = new Fifo<TaskRow>(64);
  private freshAt: number;

  constructor(
    private readonly order: (a: TaskRow, b: TaskRow) => number,
    private readonly recheckMs: number,
    /** Real time in ms (a buffered task waits in real time, whatever clock leases use). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.freshAt = now();
  }

  get length(): number {
    return this.fifo.length;
  }

  /** The task `i` places from the front (0: the next to start). */
  at(i: number): TaskRow | undefined {
    return this.fifo.at(i);
  }

  /**
   * Adds claimed rows (in claim order) at their rank: after the buffered ones unless one of them
   * ranks above the last buffered task (a higher-priority task became due since the last claim).
   * The database was asked just now.
   */
  add(rows: readonly TaskRow[]): void {
    this.freshAt = this.now();
    const last = this.fifo.at(this.fifo.length - 1);
    if (rows.length === 0 || last === undefined || this.order(rows[0]!, last) >= 0) {
      this.fifo.pushAll(rows);
      return;
    }
    const all = this.fifo.take(this.fifo.length).concat(rows).sort(this.order);
    this.fifo.pushAll(all);
  }

  /**
   * Adds `rows` (claimed because they outrank buffered tasks) at their rank, and takes out as many
   * of the lowest-ranked buffered tasks, to be given back: the worker holds no more than before.
   */
  displace(rows: readonly TaskRow[]): TaskRow[] {
    const keep = this.fifo.length;
    this.add(rows);
    const all = this.fifo.take(this.fifo.length);
    this.fifo.pushAll(all.slice(0, keep));
    return all.slice(keep);
  }

  /** True when the database was last asked for due tasks longer ago than the recheck interval. */
  stale(): boolean {
    return this.now() - this.freshAt > this.recheckMs;
  }

  /** The database was asked just now (and had nothing that outranks the buffer). */
  touch(): void {
    this.freshAt = this.now();
  }

  shift(): TaskRow | undefined {
    return this.fifo.shift();
  }

  /** Takes out the first buffered task (in claim order) that `ok` accepts, if any. */
  shiftFirst(ok: (t: TaskRow) => boolean): TaskRow | undefined {
    for (let i = 0; i < this.fifo.length; i++) {
      if (!ok(this.fifo.at(i)!)) continue;
      if (i === 0) return this.fifo.shift();
      const before = this.fifo.take(i);
      const found = this.fifo.shift();
      this.fifo.unshiftAll(before);
      return found;
    }
    return undefined;
  }

  take(n: number): TaskRow[] {
    return this.fifo.take(n);
  }

  /** Takes out the buffered task of this claim token, if one is here. */
  remove(token: string): TaskRow | undefined {
    const task = this.fifo.find((t) => t.claimToken === token);
    if (task) this.fifo.filter((t) => t !== task);
    return task;
  }

  toArray(): TaskRow[] {
    return this.fifo.toArray();
  }
}

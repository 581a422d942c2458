/**
 * The worker's gate for keyed tasks: how many attempts of each task name and key run in this
 * worker now, so that it never starts more of a key than its limit, even when a claim took
 * several of them (a chain, see store/flow-claim.ts). Tasks waiting behind their key stay in the
 * prefetch buffer and do not count as able to start.
 */
import type { TaskRow } from '../types.js';
import type { PrefetchBuffer } from './prefetch.js';

/** A keyed task's name and key, as one map key. */
function keyOf(t: Pick<TaskRow, 'name' | 'concurrencyKey'>): string {
  return `${t.name}\u0000${t.concurrencyKey}`;
}

export class KeyGate {
  /** Running attempts of this worker per task name and key. */
  private readonly running = new Map<string, number>();

  /** `limitOf(name)`: the per-key limit of a task name (1 unless its definition says more). */
  constructor(private readonly limitOf: (name: string) => number) {}

  /** Whether no keyed attempt runs (then every buffered task may start). */
  get open(): boolean {
    return this.running.size === 0;
  }

  /** Whether `t`'s key already runs here at its limit. */
  full(t: TaskRow): boolean {
    if (t.concurrencyKey === null) return false;
    return (this.running.get(keyOf(t)) ?? 0) >= this.limitOf(t.name);
  }

  /** Buffered tasks that could start now (not waiting behind a running task of their key). */
  startable(buffer: PrefetchBuffer): number {
    if (this.running.size === 0) return buffer.length;
    let n = 0;
    for (let i = 0; i < buffer.length; i++) if (!this.full(buffer.at(i)!)) n++;
    return n;
  }

  /** Counts `t`'s attempt as running; call the returned function when it ends. */
  enter(t: TaskRow): () => void {
    if (t.concurrencyKey === null) return () => {};
    const key = keyOf(t);
    this.running.set(key, (this.running.get(key) ?? 0) + 1);
    return () => {
      const n = this.running.get(key)! - 1;
      if (n > 0) this.running.set(key, n);
      else this.running.delete(key);
    };
  }
}

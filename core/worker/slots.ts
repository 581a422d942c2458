/**
 * The attempts a worker is running: one reusable entry per concurrency slot.
 *
 * Not a Map keyed by claim token: a Map that takes and drops thousands of keys a second rebuilds
 * its hash table again and again, and V8 leaves each replaced table in the old generation still
 * pointing at the entries it held, which keeps those (and their task rows) alive through every
 * scavenge until a full collection (see fifo.ts). A fixed array whose entry is cleared when its
 * attempt ends holds nothing stale. Lookups by token only happen for a cancel, a lost lease or a
 * stop, and scan at most `concurrency` entries.
 */
import type { AttemptControl } from '../definition/attempt-control.js';
import type { TaskRow } from '../types.js';

export interface Slot {
  task: TaskRow;
  stop: AttemptControl;
}

export class Slots {
  private entries: Array<Slot | null>;
  private readonly freeList: number[] = [];
  private used = 0;

  constructor(capacity: number) {
    this.entries = new Array<Slot | null>(Math.max(1, capacity)).fill(null);
    for (let i = this.entries.length - 1; i >= 0; i--) this.freeList.push(i);
  }

  get size(): number {
    return this.used;
  }

  /** Takes a free entry for `slot`; returns its index for `remove`. */
  add(slot: Slot): number {
    if (this.freeList.length === 0) this.grow();
    const i = this.freeList.pop()!;
    this.entries[i] = slot;
    this.used++;
    return i;
  }

  remove(index: number): void {
    if (this.entries[index] === null) return;
    this.entries[index] = null;
    this.freeList.push(index);
    this.used--;
  }

  /** The running attempt holding the claim `token`, if any. */
  get(token: string): Slot | undefined {
    for (const s of this.entries) if (s !== null && s.task.claimToken === token) return s;
    return undefined;
  }

  values(): Slot[] {
    return this.entries.filter((s): s is Slot => s !== null);
  }

  private grow(): void {
    // More attempts than slots cannot happen (dispatch checks the size); kept correct anyway.
    const old = this.entries.length;
    const next = new Array<Slot | null>(old * 2).fill(null);
    for (let i = 0; i < old; i++) next[i] = this.entries[i]!;
    this.entries.fill(null);
    this.entries = next;
    for (let i = next.length - 1; i >= old; i--) this.freeList.push(i);
  }
}

/**
 * A first-in, first-out queue over a ring of slots that are cleared as items leave.
 *
 * Why not an array with push/shift/splice: a long-lived array ends up in V8's old generation, and
 * every time it grows V8 copies it and abandons the old backing store there, still pointing at the
 * items it held. Until the next full collection those stale pointers keep young objects alive
 * through every scavenge, so they are promoted too. In a busy worker that was most claimed task
 * rows (measured: about 0.5 MB promoted per scavenge, the old generation climbing until a full
 * collection), although each row is done with within milliseconds. Here a slot is cleared the
 * moment its item is taken, and a ring that grows clears the one it replaces.
 */
export class Fifo<T> {
  private ring: Array<T | undefined>;
  private head = 0;
  private count = 0;

  constructor(capacity = 16) {
    this.ring = new Array<T | undefined>(Math.max(1, capacity)).fill(undefined);
  }

  get length(): number {
    return this.count;
  }

  /** The item `i` places from the front (0: the next to leave), or undefined. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    return this.ring[(this.head + i) % this.ring.length];
  }

  push(item: T): void {
    if (this.count === this.ring.length) this.grow(this.count + 1);
    this.ring[(this.head + this.count) % this.ring.length] = item;
    this.count++;
  }

  pushAll(items: readonly T[]): void {
    if (this.count + items.length > this.ring.length) this.grow(this.count + items.length);
    for (const item of items) {
      this.ring[(this.head + this.count) % this.ring.length] = item;
      this.count++;
    }
  }

  /** Puts `items` back at the front, in their order (a write that has to be tried again). */
  unshiftAll(items: readonly T[]): void {
    if (this.count + items.length > this.ring.length) this.grow(this.count + items.length);
    for (let i = items.length - 1; i >= 0; i--) {
      this.head = (this.head - 1 + this.ring.length) % this.ring.length;
      this.ring[this.head] = items[i];
      this.count++;
    }
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
    return item;
  }

  /** Takes up to `n` items from the front. */
  take(n: number): T[] {
    const out: T[] = [];
    while (out.length < n && this.count > 0) out.push(this.shift()!);
    return out;
  }

  /** Removes the items `keep` rejects, keeping the order of the rest. */
  filter(keep: (item: T) => boolean): void {
    const kept = this.take(this.count).filter(keep);
    this.pushAll(kept);
  }

  find(pred: (item: T) => boolean): T | undefined {
    for (let i = 0; i < this.count; i++) {
      const item = this.at(i)!;
      if (pred(item)) return item;
    }
    return undefined;
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.at(i)!);
    return out;
  }

  private grow(needed: number): void {
    let capacity = this.ring.length * 2;
    while (capacity < needed) capacity *= 2;
    const next = new Array<T | undefined>(capacity).fill(undefined);
    for (let i = 0; i < this.count; i++) next[i] = this.at(i);
    // The ring being replaced must not keep pointing at the items (see the comment at the top).
    this.ring.fill(undefined);
    this.ring = next;
    this.head = 0;
  }
}

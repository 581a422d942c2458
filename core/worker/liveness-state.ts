/**
 * What the liveness thread and the worker's event loop share (worker/liveness.ts): a few 64-bit
 * slots in a SharedArrayBuffer, read and written with Atomics. Shared memory rather than
 * messages: a message the thread posts waits in the queue of an event loop that a task blocks,
 * and when the loop runs again, a timer may read the state before the message is delivered; the
 * buffer always holds what the thread last wrote.
 *
 * Times here are real time in ms (performance.timeOrigin + performance.now(), the same in every
 * thread of the process and never stepped back), except the clock offset, which turns real time
 * into the worker's clock (which keeps the database's time) for the value written to the row.
 */

/** The worker's clock minus Date.now(), in ms (written by the event loop, read by the thread). */
const OFFSET = 0;
/** When the last beat that landed was sent (real ms; 0: none yet). */
const LAST_LANDED = 1;
/** When the first beat of the current run of landed beats with no gap over the judging gap was sent. */
const JUDGING_SINCE = 2;
/** The same, with no gap over the fence: it moves when the worker was silent long enough to be fenced. */
const FENCE_RUN_SINCE = 3;
const SLOTS = 4;

/** Real time in ms, comparable across the threads of this process. */
export function realNowMs(): number {
  return performance.timeOrigin + performance.now();
}

export class LivenessState {
  private readonly slots: BigInt64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 8)) {
    this.slots = new BigInt64Array(buffer);
  }

  private get(i: number): number {
    return Number(Atomics.load(this.slots, i));
  }

  private set(i: number, v: number): void {
    Atomics.store(this.slots, i, BigInt(Math.round(v)));
  }

  get offsetMs(): number {
    return this.get(OFFSET);
  }

  set offsetMs(v: number) {
    this.set(OFFSET, v);
  }

  /** When the last beat that landed was sent (real ms), or 0. */
  get lastLanded(): number {
    return this.get(LAST_LANDED);
  }

  get judgingSince(): number {
    return this.get(JUDGING_SINCE);
  }

  get fenceRunSince(): number {
    return this.get(FENCE_RUN_SINCE);
  }

  /** A beat sent at `sentAt` (real ms) landed: extends the current runs, or starts new ones after a gap. */
  landed(sentAt: number, gapMs: number, fenceMs: number): void {
    const last = this.lastLanded;
    if (last === 0 || sentAt - last > gapMs) this.set(JUDGING_SINCE, sentAt);
    if (last === 0 || sentAt - last > fenceMs) this.set(FENCE_RUN_SINCE, sentAt);
    if (sentAt > last) this.set(LAST_LANDED, sentAt);
  }
}

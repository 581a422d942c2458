import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import v8 from 'node:v8';
import { HOLD_YOUNG_BYTES, holdYoungGeneration, userSizesYoungGeneration, youngGrowthFactor } from '../../cli/young-generation.js';
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { threadStarting } from '../../core/base/threads.js';

describe('young generation hold (process-tasks)', () => {
  it('lets V8 grow the young generation below the held size and stops it at or above', () => {
    expect(youngGrowthFactor(1024 * 1024)).to.equal(2);
    expect(youngGrowthFactor(HOLD_YOUNG_BYTES - 1)).to.equal(2);
    expect(youngGrowthFactor(HOLD_YOUNG_BYTES)).to.equal(1);
    expect(youngGrowthFactor(2 * HOLD_YOUNG_BYTES)).to.equal(1);
    expect(youngGrowthFactor(8, 16)).to.equal(2);
  });

  it("leaves a user's own semi-space setting alone", () => {
    expect(userSizesYoungGeneration(['--max-semi-space-size=1'], undefined)).to.equal(true);
    expect(userSizesYoungGeneration([], '--max-old-space-size=512 --max-semi-space-size=4')).to.equal(true);
    expect(userSizesYoungGeneration([], '--semi-space-growth-factor=1')).to.equal(true);
    expect(userSizesYoungGeneration([], '--min_semi_space_size=2')).to.equal(true);
    expect(userSizesYoungGeneration(['--import', 'tsx'], '--max-old-space-size=512')).to.equal(false);
    expect(userSizesYoungGeneration([], undefined)).to.equal(false);
  });

  it('sets its growth factor again on every turn while a thread of the worker comes up, until it is online; not once released', async () => {
    // Making a thread's isolate puts V8's factor back to 2: the keeper must not wait for a collection.
    const set: string[] = [];
    const original = v8.setFlagsFromString;
    v8.setFlagsFromString = (flags: string) => {
      set.push(flags);
      original(flags);
    };
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
    try {
      const release = holdYoungGeneration(1);
      expect(set.at(-1)).to.equal('--semi-space-growth-factor=1');
      // A stand-in for the thread: only its events matter here.
      const thread = new EventEmitter();
      const before = set.length;
      threadStarting(thread as unknown as Worker);
      await turn();
      await turn();
      await turn();
      expect(set.length - before, 'set again on each turn while it comes up').to.be.at.least(3);
      expect(set.slice(before).every((f) => f === '--semi-space-growth-factor=1')).to.equal(true);
      thread.emit('online');
      await turn();
      const online = set.length;
      await turn();
      await turn();
      expect(set.length, 'no more once it is online').to.equal(online);
      release();
      const released = set.length;
      threadStarting(new EventEmitter() as unknown as Worker);
      await turn();
      expect(set.length, 'nothing after release').to.equal(released);
    } finally {
      v8.setFlagsFromString = original;
    }
  });

  it('lets the young generation grow to the held size, then keeps it there (fresh process)', () => {
    // A fresh node process: this one's young generation may already be at V8's maximum.
    const moduleUrl = new URL('../../cli/young-generation.ts', import.meta.url).href;
    const script = `
      const { holdYoungGeneration, youngBytes } = await import(${JSON.stringify(moduleUrl)});
      const keep = [];
      const churn = async (rounds) => {
        for (let r = 0; r < rounds; r++) {
          for (let i = 0; i < 2000; i++) keep.push({ r, i, s: 'x' + i, a: [i, r] });
          if (keep.length > 60000) keep.splice(0, 30000);
          await new Promise((res) => setImmediate(res));
        }
        keep.length = 0;
      };
      const start = youngBytes();
      // Growing up to a target: twice the present size, reached and then kept.
      let stop = holdYoungGeneration(2 * start);
      await churn(400);
      const grown = youngBytes();
      stop();
      const held = youngBytes();
      stop = holdYoungGeneration(held);
      await churn(400);
      const whileHeld = youngBytes();
      stop();
      await churn(400);
      console.log(JSON.stringify({ start, grown, held, whileHeld, after: youngBytes() }));
    `;
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { start: number; grown: number; held: number; whileHeld: number; after: number };
    expect(r.grown).to.equal(2 * r.start);
    expect(r.whileHeld).to.equal(r.held);
    // The same churn without the hold grows it: the assertion above could fail.
    expect(r.after).to.be.above(r.held);
  });
});

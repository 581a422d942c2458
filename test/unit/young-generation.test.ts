import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import v8 from 'node:v8';
import { HOLD_YOUNG_BYTES, holdYoungGeneration, userSizesYoungGeneration, youngGrowthFactor } from '../../cli/young-generation.js';
import { threadOnline } from '../../core/base/threads.js';

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

  it('sets its growth factor again as soon as a thread of the worker comes online, and no more once released', () => {
    // Making a thread's isolate puts V8's factor back to 2: the keeper must not wait for a collection.
    const set: string[] = [];
    const original = v8.setFlagsFromString;
    v8.setFlagsFromString = (flags: string) => {
      set.push(flags);
      original(flags);
    };
    try {
      const release = holdYoungGeneration(1);
      const held = set.length;
      expect(set.at(-1)).to.equal('--semi-space-growth-factor=1');
      threadOnline();
      expect(set.length, 'set again when a thread came online').to.equal(held + 1);
      expect(set.at(-1)).to.equal('--semi-space-growth-factor=1');
      release();
      const released = set.length;
      threadOnline();
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

/**
 * core/policy/clock-skew.ts: the offset a comparison of the clocks gives, when a worker corrects
 * its clock by it, and when it warns. (On the databases, with skewed workers: test/scenarios/clock-skew.test.ts.)
 */
import { expect } from 'chai';
import { correctionFor, estimateOffset, SKEW_CORRECT_MS, skewWorthWarning } from '../../core/policy/clock-skew.js';
import { ManualClock, OffsetClock, systemClock } from '../../core/base/clock.js';

describe('clock skew', () => {
  it('takes the offset from the sample with the shortest round trip, at its midpoint', () => {
    const m = estimateOffset([
      { sentMs: 1_000, serverMs: 31_400, receivedMs: 1_800 },
      { sentMs: 2_000, serverMs: 32_050, receivedMs: 2_100 },
      { sentMs: 3_000, serverMs: 33_500, receivedMs: 3_400 },
    ]);
    expect(m).to.deep.equal({ offsetMs: 30_000, uncertaintyMs: 50 });
  });

  it('ignores a sample during which the clock went back, and gives null without a usable one', () => {
    expect(estimateOffset([{ sentMs: 5_000, serverMs: 1, receivedMs: 4_000 }, { sentMs: 10, serverMs: 1_010, receivedMs: 30 }])).to.deep.equal({ offsetMs: 990, uncertaintyMs: 10 });
    expect(estimateOffset([{ sentMs: 5_000, serverMs: 1, receivedMs: 4_000 }])).to.equal(null);
    expect(estimateOffset([])).to.equal(null);
  });

  it('corrects only a difference surely over a second, and keeps a correction that a new measurement only jitters around', () => {
    expect(correctionFor({ offsetMs: 900, uncertaintyMs: 1 }, 0)).to.equal(0);
    expect(correctionFor({ offsetMs: -SKEW_CORRECT_MS, uncertaintyMs: 0 }, 0)).to.equal(0);
    // 1.2 s measured with 0.5 s of uncertainty might be under a second.
    expect(correctionFor({ offsetMs: 1_200, uncertaintyMs: 500 }, 0)).to.equal(0);
    expect(correctionFor({ offsetMs: -30_000.4, uncertaintyMs: 2 }, 0)).to.equal(-30_000);
    expect(correctionFor({ offsetMs: 29_960, uncertaintyMs: 2 }, 30_000)).to.equal(30_000);
    expect(correctionFor({ offsetMs: 29_000, uncertaintyMs: 2 }, 30_000)).to.equal(29_000);
    // Back within a second: no correction any more.
    expect(correctionFor({ offsetMs: 20, uncertaintyMs: 2 }, 30_000)).to.equal(0);
  });

  it('keeps a correction in use when a measurement is too uncertain to contradict it, and drops one only when surely under half a second', () => {
    // A 7.2 s round trip (a busy pool): 0.5 s ± 3.6 s does not show the 4 s skew has gone.
    expect(correctionFor({ offsetMs: 500, uncertaintyMs: 3_600 }, 4_000)).to.equal(4_000);
    // Hovering around one second: switched on only above it, then followed, not flipped off.
    expect(correctionFor({ offsetMs: 1_200, uncertaintyMs: 10 }, 0)).to.equal(1_200);
    expect(correctionFor({ offsetMs: 900, uncertaintyMs: 10 }, 1_200)).to.equal(900);
    expect(correctionFor({ offsetMs: 950, uncertaintyMs: 10 }, 900)).to.equal(900);
    expect(correctionFor({ offsetMs: 700, uncertaintyMs: 10 }, 900)).to.equal(700);
    // Surely under half a second: off.
    expect(correctionFor({ offsetMs: 300, uncertaintyMs: 10 }, 700)).to.equal(0);
    expect(correctionFor({ offsetMs: 300, uncertaintyMs: 10 }, 0)).to.equal(0);
    // A needed correction against a measurement that is merely uncertain: still off while not sure.
    expect(correctionFor({ offsetMs: 3_000, uncertaintyMs: 2_500 }, 0)).to.equal(0);
  });

  it('warns when the clocks surely differ by more than 5 s', () => {
    expect(skewWorthWarning({ offsetMs: 30_000, uncertaintyMs: 3 })).to.equal(true);
    expect(skewWorthWarning({ offsetMs: -5_001, uncertaintyMs: 0 })).to.equal(true);
    expect(skewWorthWarning({ offsetMs: 5_000, uncertaintyMs: 0 })).to.equal(false);
    expect(skewWorthWarning({ offsetMs: -5_400, uncertaintyMs: 500 })).to.equal(false);
  });

  it('an OffsetClock adds its offset to its base, and is simulated when its base is', () => {
    const manual = new ManualClock(1_000);
    const c = new OffsetClock(manual);
    c.offsetMs = -250;
    expect(c.now()).to.equal(750);
    manual.advance(1);
    expect(c.now()).to.equal(1_750);
    expect(c.simulated).to.equal(true);
    expect(new OffsetClock(systemClock).simulated).to.equal(false);
  });
});

/**
 * When `process-tasks` waits its random start-up delay (cli/startup-delay.ts): by default only in
 * a `--duration` run started off a terminal (cron's case); `--startup-delay` and
 * `--no-startup-delay` decide it outright.
 */
import { expect } from 'chai';
import { STARTUP_DELAY_MAX_MS, startupDelayApplies, startupDelayMs } from '../../cli/startup-delay.js';

describe('process-tasks start-up delay rule', () => {
  it('by default waits only with a --duration, off a terminal', () => {
    expect(startupDelayApplies({ flag: undefined, duration: 300, interactive: false })).to.equal(true);
    expect(startupDelayApplies({ flag: undefined, duration: 300, interactive: true }), 'typed by hand').to.equal(false);
    expect(startupDelayApplies({ flag: undefined, duration: 0, interactive: false }), '--batch, or a long-running worker').to.equal(false);
    expect(startupDelayApplies({ flag: undefined, duration: undefined, interactive: false })).to.equal(false);
  });

  it('--startup-delay always waits, --no-startup-delay never does', () => {
    for (const interactive of [true, false]) {
      for (const duration of [0, 300]) {
        expect(startupDelayApplies({ flag: true, duration, interactive })).to.equal(true);
        expect(startupDelayApplies({ flag: false, duration, interactive })).to.equal(false);
      }
    }
  });

  it('the delay is a whole number of ms from 0 to just under 1 s', () => {
    expect(startupDelayMs(() => 0)).to.equal(0);
    expect(startupDelayMs(() => 0.5)).to.equal(500);
    expect(startupDelayMs(() => 0.999999)).to.equal(STARTUP_DELAY_MAX_MS - 1);
  });
});

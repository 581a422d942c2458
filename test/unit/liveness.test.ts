/**
 * core/policy/liveness.ts: the liveness beat's durations and the silence rule, and
 * worker/liveness.ts livenessUnavailable (which workers have no beat). No database.
 */
import { expect } from 'chai';
import knex from 'knex';
import { ManualClock, systemClock } from '../../core/base/clock.js';
import { parseDatabase } from '../../core/config/database-spec.js';
import { isSilent, livenessBeatMs, livenessFenceMs, livenessGapMs, mayJudgeSilence, MIN_LIVENESS_TIMEOUT } from '../../core/policy/liveness.js';
import { livenessUnavailable } from '../../core/worker/liveness.js';
import { isLiveState, workerState } from '../../core/policy/status.js';

describe('liveness beat (policy)', () => {
  it('beats every 2 s with the default 12 s timeout, fences after 8 s, and judges with gaps of at most 4 s', () => {
    expect([livenessBeatMs(12_000), livenessFenceMs(12_000), livenessGapMs(12_000)]).to.deep.equal([2000, 8000, 4000]);
    // The shortest timeout: a beat every 1.5 s, and 3 s between the fence and the others' recovery.
    expect([livenessBeatMs(MIN_LIVENESS_TIMEOUT * 1000), livenessFenceMs(MIN_LIVENESS_TIMEOUT * 1000)]).to.deep.equal([1500, 6000]);
    expect(livenessBeatMs(60_000)).to.equal(2000);
    expect(MIN_LIVENESS_TIMEOUT * 1000 - livenessFenceMs(MIN_LIVENESS_TIMEOUT * 1000), 'more than two workers’ clocks may differ (about 2 s)').to.be.greaterThan(2000);
  });

  const row = { aliveAt: 100_000, livenessMs: 12_000, heartbeatAt: 100_000, heartbeatMs: 3000 };

  it('is silent once both its liveness beat and its registry heartbeat are older than their bounds', () => {
    expect(isSilent(row, 112_000)).to.equal(false);
    expect(isSilent(row, 112_001)).to.equal(true);
    // A blocked event loop: the registry heartbeat stopped, the liveness beat goes on.
    expect(isSilent({ ...row, aliveAt: 111_000 }, 115_000)).to.equal(false);
    // A worker of an older version under the same id: its heartbeat goes on, the old beat does not move.
    expect(isSilent({ ...row, heartbeatAt: 120_000 }, 125_000)).to.equal(false);
    // No beat: never silent (its tasks wait for their lease).
    expect(isSilent({ ...row, aliveAt: null, livenessMs: null }, 1e12)).to.equal(false);
    expect(isSilent({ ...row, livenessMs: null }, 1e12)).to.equal(false);
  });

  it('judges silence only after its own beats landed for the silent worker’s whole timeout', () => {
    expect(mayJudgeSilence(0, 12_000)).to.equal(false);
    expect(mayJudgeSilence(11_999, 12_000)).to.equal(false);
    expect(mayJudgeSilence(12_000, 12_000)).to.equal(true);
    expect(mayJudgeSilence(15_000, 20_000)).to.equal(false);
  });

  it('has a beat only on a server database bgtasks connects to itself, on a real clock, with a timeout', () => {
    const pg = parseDatabase('postgres://u@db.example/app', '/tmp', 'test');
    const mysql = parseDatabase('mysql://u@db.example/app', '/tmp', 'test');
    expect(livenessUnavailable(pg, 12_000, systemClock)).to.equal(null);
    expect(livenessUnavailable(mysql, 12_000, systemClock)).to.equal(null);
    expect(livenessUnavailable(pg, 0, systemClock)).to.match(/livenessTimeout is 0/);
    expect(livenessUnavailable(pg, 12_000, new ManualClock(0))).to.match(/simulated clock/);
    expect(livenessUnavailable(parseDatabase('sqlite:x.sqlite3', '/tmp', 'test'), 12_000, systemClock)).to.match(/^SQLite/);
    const own = knex({ client: 'pg', connection: 'postgres://u@db.example/app' });
    try {
      expect(livenessUnavailable(parseDatabase(own, '/tmp', 'test'), 12_000, systemClock)).to.match(/application's own knex instance/);
    } finally {
      void own.destroy();
    }
    const withHook = parseDatabase({ client: 'pg', connection: 'postgres://u@db.example/app', pool: { afterCreate: (_c: unknown, done: () => void) => done() } }, '/tmp', 'test');
    expect(livenessUnavailable(withHook, 12_000, systemClock)).to.match(/holds functions/);
  });
});

describe('workerState (policy)', () => {
  const T = 1_000_000;
  const row = { heartbeatAt: T - 30_000, heartbeatMs: 3000, stoppedAt: null };
  it('is alive while the heartbeat arrives, whatever the liveness beat', () => {
    expect(workerState({ ...row, heartbeatAt: T - 8000 }, T)).to.equal('alive');
    expect(workerState({ ...row, heartbeatAt: T - 8000, aliveAt: T - 60_000, livenessMs: 12_000 }, T)).to.equal('alive');
  });
  it('is blocked when the heartbeat stopped but the liveness beat is within its livenessTimeout, lost once it is not', () => {
    expect(workerState({ ...row, aliveAt: T - 11_999, livenessMs: 12_000 }, T)).to.equal('blocked');
    expect(workerState({ ...row, aliveAt: T - 12_000, livenessMs: 12_000 }, T)).to.equal('lost');
  });
  it('is lost without a liveness beat, and stopped after a goodbye', () => {
    expect(workerState(row, T)).to.equal('lost');
    expect(workerState({ ...row, aliveAt: null, livenessMs: null }, T)).to.equal('lost');
    expect(workerState({ ...row, stoppedAt: T - 1, aliveAt: T, livenessMs: 12_000 }, T)).to.equal('stopped');
  });
  it('counts alive and blocked workers as live', () => {
    expect(['alive', 'blocked', 'stopped', 'lost'].filter((s) => isLiveState(s as never))).to.deep.equal(['alive', 'blocked']);
  });
});

/**
 * The set-up most contract suites share: a manual clock installed as the library's clock for each
 * test (on a freshly reset database), and `drain()`, a batch worker on that clock.
 */
import { ManualClock } from '../../core/base/clock.js';
import { resetClock, setClock } from '../../core/base/clock.js';
import { Worker, type WorkerOptions } from '../../core/worker/worker.js';
import type { TestDatabase } from './databases.js';
import { recordingLogger } from './log.js';

export function manualClockSuite(db: TestDatabase, t0: number, resetState: () => void = () => {}) {
  const clock = new ManualClock(t0);
  const drain = (extra: WorkerOptions = {}) => Worker.drain({ clock, sleep: 0.01, logger: recordingLogger(), ...extra }, db.settings);
  beforeEach(async () => {
    await db.reset();
    resetState();
    clock.set(t0);
    setClock(clock);
  });
  afterEach(() => resetClock());
  return { clock, drain };
}

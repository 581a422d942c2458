/**
 * Keeps the worker's clock on the database's time. Leases are written by one worker and judged
 * expired by another (policy/clock-skew.ts says why that needs one clock), so the worker compares
 * its clock with the database's when it starts, before its first claim, and again every minute on
 * a timer, never on the claim or settle path. When they differ by more than a second, the
 * worker's clock (an OffsetClock, the one every helper reads) runs on the database's time; when
 * they differ by more than 5 s, it warns once.
 *
 * A simulated clock (a test's ManualClock) is left alone: its time is the test's to set.
 */
import type { OffsetClock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { correctionFor, estimateOffset, SKEW_CHECK_EVERY_MS, SKEW_SAMPLES, skewWorthWarning, type ClockSample } from '../policy/clock-skew.js';
import type { Store } from '../store/store.js';
import type { Service } from './service.js';

export interface ClockSyncOptions {
  store: Store;
  clock: OffsetClock;
  log: Logger;
  /** While the database is down, the timer's comparisons are skipped. */
  isDbDown?: () => boolean;
  everyMs?: number;
}

export class ClockSync implements Service {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private warned = false;

  constructor(private readonly o: ClockSyncOptions) {}

  start(): void {
    if (this.o.clock.simulated) return;
    this.timer = setInterval(() => {
      if (!this.o.isDbDown?.()) void this.measure();
    }, this.o.everyMs ?? SKEW_CHECK_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  /** Compares the clocks and sets the correction; never throws (an unknown skew keeps the last one). */
  measure(): Promise<void> {
    if (this.o.clock.simulated) return Promise.resolve();
    if (!this.inFlight) this.inFlight = this.compare().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async compare(): Promise<void> {
    const { store, clock, log } = this.o;
    const samples: ClockSample[] = [];
    try {
      for (let i = 0; i < SKEW_SAMPLES; i++) {
        // Against the worker's own clock, without the correction in use.
        const sentMs = clock.base.now();
        const serverMs = await store.dialect.serverTimeMs(store.knex);
        samples.push({ sentMs, serverMs, receivedMs: clock.base.now() });
      }
    } catch (err) {
      log.debug('could not read the database\'s clock; the worker\'s clock correction stays as it was', { error: err instanceof Error ? err.message : String(err) });
      if (samples.length === 0) return;
    }
    const m = estimateOffset(samples);
    if (!m) return;
    const before = clock.offsetMs;
    clock.offsetMs = correctionFor(m, before);
    if (skewWorthWarning(m) && !this.warned) {
      this.warned = true;
      log.warn('this worker\'s clock and the database\'s differ; the worker keeps the database\'s time for its leases and schedules (measured again every minute): synchronise this machine\'s clock (NTP)', {
        // Positive when this worker's clock runs ahead of the database's.
        worker_ahead_ms: Math.round(-m.offsetMs),
        uncertainty_ms: Math.round(m.uncertaintyMs),
      });
    } else if (clock.offsetMs !== before) {
      log.info('the worker\'s clock correction changed: it keeps the database\'s time', { correction_ms: clock.offsetMs, previous_ms: before });
    }
  }
}

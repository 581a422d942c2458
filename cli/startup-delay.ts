/**
 * The random start-up delay of `process-tasks`: up to 1 s before the first claim, so that the
 * workers one cron tick starts on many machines do not all poll at the same instant.
 *
 * It is only worth its cost where a worker lives long compared to it and is started by a clock:
 * a `--duration` window (typically 300 s, started by cron), off a terminal. Elsewhere it was pure
 * loss:
 * - by hand, on a terminal, nobody is in step with anyone, and the user waits;
 * - a `--batch` run often lives for less than the delay (10,000 no-op tasks at concurrency 16
 *   take about half a second), and when one tick starts many, their first claims still cannot
 *   take a task twice (claims are atomic);
 * - a long-running worker under a supervisor is started once, not by a clock.
 * `--startup-delay` asks for it anyway (many `--batch` workers from one crontab line), and
 * `--no-startup-delay` never waits.
 */
import { isatty } from 'node:tty';

export const STARTUP_DELAY_MAX_MS = 1000;

export interface StartupDelayInput {
  /** `--startup-delay` (true), `--no-startup-delay` (false), or neither (undefined). */
  flag: boolean | undefined;
  /** `--duration` in seconds (0 or undefined: none). */
  duration: number | undefined;
  /** Whether standard input or output is a terminal (a user typed the command). */
  interactive: boolean;
}

/** Whether the worker waits the random delay before its first claim. */
export function startupDelayApplies(i: StartupDelayInput): boolean {
  if (i.flag !== undefined) return i.flag;
  return (i.duration ?? 0) > 0 && !i.interactive;
}

/** Standard input or output is a terminal. `isatty` on the descriptors: no stream is created. */
export function onTerminal(): boolean {
  return isatty(0) || isatty(1);
}

/** How long to wait: uniform in [0, STARTUP_DELAY_MAX_MS). */
export function startupDelayMs(random: () => number = Math.random): number {
  return Math.floor(random() * STARTUP_DELAY_MAX_MS);
}

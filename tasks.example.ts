/**
 * Example tasks: copy what you need into your own `tasks.ts`. `npm start` runs these through
 * `bgtasks process-tasks` on the embedded SQLite database; a test type-checks and runs them too.
 */
import { background, PermanentTaskError, Repeat } from 'bgtasks';

/** A notification, sent a minute after it is requested (the task's default schedule). */
export const notifyUser = background({ schedule: 60, queue: 'mail' }, async function notifyUser(userId: number, message: string) {
  if (!Number.isInteger(userId) || userId <= 0) throw new PermanentTaskError(`no such user: ${userId}`);
  // A real task would call a mail or push service here.
  return { userId, delivered: message.length > 0 };
});

/**
 * A task that depends on a flaky service: its first attempt fails, and the retry (after the
 * `attempts ** 4 + 5` backoff, 6 s after the first failure) succeeds.
 */
export const syncInventory = background({ context: true, maxAttempts: 5 }, async function syncInventory(ctx, warehouse: string) {
  if (ctx.attempt === 1) throw new Error(`inventory service for ${warehouse} timed out`);
  return { warehouse, items: 42, attempt: ctx.attempt };
});

/** A plain computation with a return value you can read back with getResult(id). */
export const resizeImage = background(async function resizeImage(path: string, width: number) {
  return { path, width, thumbnail: path.replace(/(\.\w+)$/, `-${width}w$1`) };
});

/**
 * A repeating task: start the chain once (`await purgeSessions(olderThanDays)`); after each run
 * the next one is scheduled an hour after the previous one's slot, with the same arguments.
 */
export const purgeSessions = background({ repeat: Repeat.HOURLY }, async function purgeSessions(olderThanDays: number) {
  // A real task would delete expired sessions here.
  return { olderThanDays, purged: 0 };
});

/**
 * A cron schedule: every running worker makes sure each 03:00 (Berlin time) slot is enqueued
 * exactly once in total. Nothing to call: declaring it is enough. `bgtasks schedules` lists it.
 */
export const dailyReport = background({ cron: '0 3 * * *', timezone: 'Europe/Berlin', args: ['sales'] }, async function dailyReport(kind: string) {
  return { kind, rows: 0 };
});

/**
 * Example tasks: copy what you need into your own `tasks.ts`. `npm start` runs these through
 * `bgtasks process-tasks` on the embedded SQLite database; a test type-checks and runs them too.
 */
import { background, PermanentTaskError } from 'bgtasks';

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

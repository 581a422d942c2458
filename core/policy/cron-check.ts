/** Cron expression validation (at definition and enqueue time). */
import { ValidationError } from '../errors.js';

export function checkCron(expression: string, label: string): void {
  throw new ValidationError(`Invalid ${label}: ${JSON.stringify(expression)} — cron recurrences are not supported yet; use seconds`);
}

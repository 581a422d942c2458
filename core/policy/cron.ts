/**
 * Cron slots. Placeholder until the cron issue lands: any cron rule is rejected at enqueue, so this
 * is never reached with a rule.
 */
export function nextCronSlot(expression: string, _timezone: string, _afterMs: number): number {
  throw new Error(`cron recurrences are not supported yet (${expression})`);
}

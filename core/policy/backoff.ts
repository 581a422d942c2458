/**
 * Retry delay after a failed attempt, in seconds: `attempts ** 4 + 5`, where `attempts` already
 * counts the failed attempt (6, 21, 86, 261, 630 s, …), exactly as django-background-tasks.
 */
export function backoffSeconds(attempts: number): number {
  return attempts ** 4 + 5;
}

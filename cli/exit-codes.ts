/** Exit codes of every command (docs/cli.md lists them). */
export const EXIT = {
  OK: 0,
  /** A runtime failure: a task file that cannot be imported, a database error, a failed check. */
  FAILURE: 1,
  /** A usage error: an unknown flag, a bad value, a malformed argument, an unknown id or name. */
  USAGE: 2,
  /** The database is not migrated (or was migrated by a newer bgtasks). */
  NOT_MIGRATED: 3,
} as const;

/** IANA time zone checks, through Intl (no data files of our own). */
const cache = new Map<string, boolean>();

/** Why `zone` is not a time zone, in Intl's own words (null when it is one). */
export function timeZoneProblem(zone: unknown): string | null {
  if (typeof zone !== 'string') return 'not a string';
  if (zone === '') return 'an empty name';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export function isValidTimeZone(zone: string): boolean {
  let ok = cache.get(zone);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      ok = zone.length > 0;
    } catch {
      ok = false;
    }
    cache.set(zone, ok);
  }
  return ok;
}

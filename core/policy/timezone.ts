/** IANA time zone checks, through Intl (no data files of our own). */
const cache = new Map<string, boolean>();

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

/**
 * The leftover watchdog: a detached process that the test process starts once (see
 * processes.ts) and tells, one JSON line per change on its stdin, what it has started or created.
 * When stdin ends, the test process is gone: if it died without cleaning up (SIGKILL, a crash, a
 * Ctrl-C, which skips exit handlers), this removes what is still registered. A clean exit has
 * already removed everything, so then there is nothing to do.
 */
import { leftoverKey, removeLeftoversSync, stillThere, type Leftover } from './leftovers.js';

const live = new Map<string, Leftover>();
let pending = '';

// The terminal's Ctrl-C reaches the whole foreground group; the watchdog must outlive it.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => {});

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  pending += chunk;
  for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    try {
      const msg = JSON.parse(line) as { add?: Leftover; remove?: string };
      if (msg.add) live.set(leftoverKey(msg.add), msg.add);
      if (msg.remove) live.delete(msg.remove);
    } catch {
      // A torn last line from a dying writer: what it said is lost, the rest still counts.
    }
  }
});
process.stdin.on('end', () => {
  const left = [...live.values()].filter(stillThere);
  if (left.length > 0) removeLeftoversSync(left);
  process.exit(0);
});

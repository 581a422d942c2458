/**
 * Process-wide state lives in one slot on `globalThis`, keyed by `Symbol.for`. A user's task file
 * loaded through tsx (or a second copy of the package in node_modules) gets its own instance of
 * these modules; the registry, the settings and the event emitter must still be one.
 */
const SLOT = Symbol.for('bgtasks.state.v1');

type Bag = Map<string, unknown>;

function bag(): Bag {
  const g = globalThis as unknown as Record<symbol, Bag | undefined>;
  let b = g[SLOT];
  if (!b) {
    b = new Map();
    g[SLOT] = b;
  }
  return b;
}

/** The process-wide value stored under `key`, created by `init` on first use. */
export function processWide<T>(key: string, init: () => T): T {
  const b = bag();
  if (!b.has(key)) b.set(key, init());
  return b.get(key) as T;
}

/**
 * The known name a misspelt one most likely meant (`databse` → `database`): the nearest by edit
 * distance, if it is near enough (at most 2 edits, and fewer than half the name's letters) and
 * no other is as near. Commander does this for unknown flags; settings and options do it too.
 */
export function closestName(given: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  let tie = false;
  for (const k of known) {
    const d = editDistance(given.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      [best, bestDistance, tie] = [k, d, false];
    } else if (d === bestDistance) {
      tie = true;
    }
  }
  return best !== null && !tie && best !== given && bestDistance <= 2 && bestDistance * 2 < given.length ? best : null;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or the inspector's Profiler.stop): where the
 * samples fell, by package and by function, so a bottleneck can be named without a GUI.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface Bucket {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  categories: Bucket[];
  /** Functions by self time. */
  selfTop: Bucket[];
  /** bgtasks' own functions by inclusive time (what they and everything they call cost). */
  inclusiveTop: Bucket[];
}

/** The package or runtime part a frame belongs to. */
export function category(f: CallFrame): string {
  const u = f.url;
  if (u === '') {
    if (f.functionName === '(idle)') return 'idle';
    if (f.functionName === '(garbage collector)') return 'garbage collector';
    if (f.functionName === '(program)') return 'V8/native (program)';
    return 'native';
  }
  if (u.startsWith('node:')) return 'node internals';
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
  if (m) {
    const pkg = m[1]!;
    return pkg === 'pg' || pkg.startsWith('pg-') ? 'pg driver' : pkg;
  }
  if (/\/(dist\/)?core\//.test(u)) return 'bgtasks core';
  if (/\/(dist\/)?cli\//.test(u)) return 'bgtasks cli';
  if (/\/bench\//.test(u)) return 'bench harness';
  return 'other';
}

function frameName(f: CallFrame): string {
  const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist\/)?((core|cli)\/)/, '$2');
  return `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
}

function top(map: Map<string, number>, totalMs: number, n: number): Bucket[] {
  return [...map.entries()]
    .map(([name, ms]) => ({ name, ms, share: ms / totalMs }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n);
}

export function summariseProfile(p: CpuProfile, n = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const selfMs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfMs.set(samples[i]!, (selfMs.get(samples[i]!) ?? 0) + (deltas[i] ?? 0) / 1000);
  const totalMs = [...selfMs.values()].reduce((a, b) => a + b, 0);

  const categories = new Map<string, number>();
  const selfByFn = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const f = byId.get(id)!.callFrame;
    const c = category(f);
    categories.set(c, (categories.get(c) ?? 0) + ms);
    const name = frameName(f);
    selfByFn.set(name, (selfByFn.get(name) ?? 0) + ms);
  }

  // Inclusive time of bgtasks frames; a function on the stack twice (recursion) counts once.
  const inclusive = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!;
    let ms = selfMs.get(id) ?? 0;
    const name = frameName(node.callFrame);
    const own = category(node.callFrame).startsWith('bgtasks') && !onStack.has(name);
    if (own) onStack.add(name);
    for (const c of node.children ?? []) ms += walk(c, onStack);
    if (own) {
      onStack.delete(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
    }
    return ms;
  };
  const childIds = new Set(p.nodes.flatMap((x) => x.children ?? []));
  for (const root of p.nodes.filter((x) => !childIds.has(x.id))) walk(root.id, new Set());

  return { totalMs, categories: top(categories, totalMs, 20), selfTop: top(selfByFn, totalMs, n), inclusiveTop: top(inclusive, totalMs, n) };
}

export function formatSummary(s: ProfileSummary, indent = '  '): string {
  const pct = (b: Bucket) => `${(b.share * 100).toFixed(1).padStart(5)} %  ${b.ms.toFixed(0).padStart(6)} ms  ${b.name}`;
  return [
    `${indent}sampled ${s.totalMs.toFixed(0)} ms; by package:`,
    ...s.categories.map((b) => `${indent}  ${pct(b)}`),
    `${indent}top functions by self time:`,
    ...s.selfTop.map((b) => `${indent}  ${pct(b)}`),
    `${indent}bgtasks functions by inclusive time:`,
    ...s.inclusiveTop.map((b) => `${indent}  ${pct(b)}`),
  ].join('\n');
}

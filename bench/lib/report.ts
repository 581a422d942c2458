/** The console tables and docs/benchmarks.md, both from the same measurements. */
import type { DbName } from './databases.js';
import type { Machine } from './machine.js';
import type { Measurement, Mode, Scenario, Sizes } from './scenario.js';
import { formatNumber } from './stats.js';
import type { TargetResult } from './targets.js';

const DB_LABEL: Record<DbName, string> = { sqlite: 'SQLite', mysql: 'MariaDB', postgres: 'PostgreSQL' };

export function dbLabel(db: DbName): string {
  return DB_LABEL[db];
}

/** A plain-text table with columns padded to their widest cell (numbers right-aligned). */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-\d.,]+$|^n\/a$/.test(r[i] ?? '')));
  const line = (cells: string[]) => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function markdownTable(header: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function metText(r: TargetResult): string {
  return r.met === null ? 'not measured' : r.met ? 'met' : 'NOT met';
}

function targetRows(results: readonly TargetResult[]): string[][] {
  return results.map((r) => [
    r.target.label,
    dbLabel(r.db),
    r.measurement ? formatNumber(r.measurement.value) : 'n/a',
    `${r.target.direction} ${formatNumber(r.bound)}`,
    metText(r),
  ]);
}

function figureRows(ms: readonly Measurement[], runs: number): string[][] {
  return ms.map((m) => [
    m.scenario,
    m.name,
    dbLabel(m.db),
    formatNumber(m.value),
    m.unit,
    ...Array.from({ length: runs }, (_, i) => (m.runs[i] === undefined ? '' : formatNumber(m.runs[i]!))),
  ]);
}

export function consoleReport(ms: readonly Measurement[], results: readonly TargetResult[], runs: number): string {
  const runCols = Array.from({ length: runs }, (_, i) => `run ${i + 1}`);
  return [
    textTable(['scenario', 'measure', 'database', 'median', 'unit', ...runCols], figureRows(ms, runs)),
    '',
    textTable(['target', 'database', 'measured', 'target', 'result'], targetRows(results)),
  ].join('\n');
}

export interface ReportInput {
  machine: Machine;
  mode: Mode;
  sizes: Sizes;
  runs: number;
  command: string;
  workerSettings: string;
  scenarios: readonly Scenario[];
  measurements: readonly Measurement[];
  results: readonly TargetResult[];
  notices: readonly string[];
  durationS: number;
}

/** The targets of `r`'s own scenarios (a run may have measured soaks and the rest together). */
function ownResults(r: ReportInput): TargetResult[] {
  return r.results.filter((x) => r.scenarios.some((s) => s.name === x.target.scenario));
}

export function markdownReport(input: ReportInput): string {
  const r = { ...input, results: ownResults(input) };
  const m = r.machine;
  const met = r.results.filter((x) => x.met === true).length;
  const out: string[] = [
    '# Benchmarks',
    '',
    `Written by \`${r.command}\` (${r.mode} mode, ${plural(r.runs, 'run')} per figure, ${Math.round(r.durationS)} s) on ${m.date}. ` +
      'Do not edit by hand: run the suite again. `npm run bench` measures every scenario on SQLite and, when ' +
      '`BGTASKS_TEST_MYSQL_URL` / `BGTASKS_TEST_PG_URL` are set, on MariaDB/MySQL and PostgreSQL, and rewrites this page but for ' +
      'two sections it keeps: "Side by side with peers" (from `../shared/peer-bench/`) and the soaks, which `npm run bench -- --soak` writes; ' +
      '`npm run bench -- --quick` is the CI smoke run (small N, no soaks, writes nothing). See bench/README.md.',
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.cores} cores (the database servers run on the same machine)`,
    `- Memory: ${m.memory}`,
    `- OS: ${m.os}`,
    `- Node: ${m.node}; ${m.drivers}`,
    ...Object.entries(m.databases).map(([db, v]) => `- ${dbLabel(db as DbName)}: ${v}`),
    `- bgtasks commit: ${m.commit}`,
    `- Load average (1, 5, 15 min): ${m.loadStart} at the start, ${m.loadEnd} at the end`,
    `- Speed probe (\`node -e 0\`, start to exit, median of 5): ${m.probeStart} at the start, ${m.probeEnd} at the end ` +
      '(about 60 ms when this VM runs at full speed; at twice that, every figure here is about half)',
    `- Worker settings: ${r.workerSettings}`,
    ...r.notices.map((n) => `- Note: ${n}`),
    '',
    '## Targets (issue 8)',
    '',
    `${met} of ${r.results.length} met. Each measured value is the median of ${plural(r.runs, 'run')}.` +
      (r.mode === 'quick' ? ' **Quick mode: N is much smaller than the targets assume, so these are not the real figures.**' : ''),
    '',
    markdownTable(['Target', 'Database', 'Measured', 'Target', 'Result'], targetRows(r.results)),
    '',
    '## Raw figures',
    '',
  ];
  const runCols = Array.from({ length: r.runs }, (_, i) => `Run ${i + 1}`);
  for (const s of r.scenarios) {
    const ms = r.measurements.filter((x) => x.scenario === s.name);
    if (ms.length === 0) continue;
    out.push(`### ${s.title}`, '', s.method(r.sizes), '');
    out.push(markdownTable(['Measure', 'Database', 'Median', ...runCols, 'Unit'], ms.map((x) => [x.name, dbLabel(x.db), formatNumber(x.value), ...runCols.map((_, i) => (x.runs[i] === undefined ? '' : formatNumber(x.runs[i]!))), x.unit])));
    const notes = ms.filter((x) => x.note).map((x) => `- ${x.name} (${dbLabel(x.db)}): ${x.note}`);
    if (notes.length > 0) out.push('', ...notes);
    out.push('');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** The heading that starts the soak section: everything from it to the end of the page. */
const SOAK_HEADING = '## Soaks';

/** The soak section of docs/benchmarks.md (`npm run bench -- --soak`): one run per figure. */
export function soakReport(input: ReportInput): string {
  const r = { ...input, results: ownResults(input) };
  const m = r.machine;
  const out: string[] = [
    SOAK_HEADING,
    '',
    `Written by \`${r.command}\` (${Math.round(r.durationS)} s) on ${m.date}, at commit ${m.commit}; the rest of this page comes from another run. ` +
      'A soak runs for minutes and is measured once, so each figure is one run. The soaks are in the bench, not in CI: `npm test` and `.ci/run` never run them ' +
      '([scenarios.md](scenarios.md) has their short versions that CI runs, where there are some).',
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memory}; the database servers run on the same machine`,
    `- Load average (1, 5, 15 min): ${m.loadStart} at the start, ${m.loadEnd} at the end`,
    `- Speed probe (\`node -e 0\`, median of 5): ${m.probeStart} at the start, ${m.probeEnd} at the end (about 60 ms at full speed)`,
    ...Object.entries(m.databases).map(([db, v]) => `- ${dbLabel(db as DbName)}: ${v}`),
    ...r.notices.map((n) => `- Note: ${n}`),
    '',
  ];
  if (r.results.length > 0) {
    const met = r.results.filter((x) => x.met === true).length;
    out.push(`${met} of ${r.results.length} soak targets met.`, '', markdownTable(['Target', 'Database', 'Measured', 'Target', 'Result'], targetRows(r.results)), '');
  }
  for (const s of r.scenarios) {
    const ms = r.measurements.filter((x) => x.scenario === s.name);
    if (ms.length === 0) continue;
    out.push(`### ${s.title}`, '', s.method(r.sizes), '');
    out.push(markdownTable(['Measure', 'Database', 'Measured', 'Unit'], ms.map((x) => [x.name, dbLabel(x.db), formatNumber(x.value), x.unit])));
    const notes = ms.filter((x) => x.note).map((x) => `- ${x.name} (${dbLabel(x.db)}): ${x.note}`);
    if (notes.length > 0) out.push('', ...notes);
    out.push('');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/**
 * The heading of the side-by-side section: written by hand from a run of ../shared/peer-bench
 * (issue 19), never by this bench, and kept where a run rewrites the page.
 */
const PEERS_HEADING = '## Side by side with peers';

/**
 * The page from its parts: the main report, the side-by-side section and the soak section, the
 * first and last each from its own kind of run. A part that this run did not write (null), and
 * the side-by-side section always, are kept from the page as it was.
 */
export function mergeReport(existing: string | null, main: string | null, soaks: string | null): string {
  const find = (heading: string) => (existing === null ? -1 : existing.search(new RegExp(`^${heading}`, 'm')));
  const soakAt = find(SOAK_HEADING);
  const peersAt = find(PEERS_HEADING);
  const end = existing === null ? 0 : existing.length;
  const mainEnd = Math.min(...[soakAt, peersAt, end].filter((i) => i >= 0));
  const oldMain = existing === null ? null : existing.slice(0, mainEnd);
  const oldPeers = existing !== null && peersAt >= 0 ? existing.slice(peersAt, soakAt > peersAt ? soakAt : end) : null;
  const oldSoaks = existing !== null && soakAt >= 0 ? existing.slice(soakAt, peersAt > soakAt ? peersAt : end) : null;
  const parts = [main ?? oldMain ?? '# Benchmarks\n', oldPeers, soaks ?? oldSoaks].filter((p): p is string => p !== null);
  return `${parts.map((p) => p.trimEnd()).join('\n\n')}\n`;
}

/** What a scenario is given and what it returns. */
import type { BenchProject } from './cli.js';
import type { DbName, DbTarget } from './databases.js';
import { median } from './stats.js';

export type Mode = 'quick' | 'full';

/** The sizes of one mode: full mode uses the N, quick mode keeps the whole run short. */
export interface Sizes {
  enqueue: number;
  process: number;
  latencyTasks: number;
  /** Tasks enqueued per second in the latency scenario. */
  latencyRate: number;
  scaleRows: number;
  scaleClaims: number;
  pruneRows: number;
  memoryLow: number;
  memoryHigh: number;
  /** Pending rows, and as many finished ones, beside the dashboard's pages. */
  dashboardRows: number;
  /** Requests per dashboard page (p95 of these). */
  dashboardSamples: number;
  /** Next pages followed to reach the deep tasks page. */
  dashboardDepth: number;
  /** LONGTX-01 (a soak): the measured window of each phase, clean and held, in seconds. */
  longtxSeconds: number;
  /** LONGTX-01: how long the load goes on after the held transaction commits, in seconds. */
  longtxReleaseSeconds: number;
  /** SQLITE-02 (a soak): how long the processes run, in seconds. */
  sqliteSoakSeconds: number;
}

/** The soaks' durations (issue 18's); `--soak-seconds` shortens them, the same in both modes. */
const SOAKS = { longtxSeconds: 600, longtxReleaseSeconds: 120, sqliteSoakSeconds: 60 };

export const SIZES: Record<Mode, Sizes> = {
  full: {
    enqueue: 10_000,
    process: 10_000,
    latencyTasks: 200,
    latencyRate: 50,
    scaleRows: 1_000_000,
    scaleClaims: 200,
    pruneRows: 1_000_000,
    memoryLow: 1_000,
    memoryHigh: 100_000,
    dashboardRows: 1_000_000,
    dashboardSamples: 40,
    dashboardDepth: 200,
    ...SOAKS,
  },
  quick: {
    enqueue: 500,
    process: 500,
    latencyTasks: 25,
    latencyRate: 50,
    scaleRows: 20_000,
    scaleClaims: 30,
    pruneRows: 20_000,
    memoryLow: 200,
    memoryHigh: 2_000,
    dashboardRows: 5_000,
    dashboardSamples: 5,
    dashboardDepth: 10,
    ...SOAKS,
  },
};

export interface Context {
  target: DbTarget;
  mode: Mode;
  sizes: Sizes;
  /** Runs per figure (the median is reported). */
  runs: number;
  /** `--prefetch` for the spawned workers, or null for the library's default. */
  prefetch: number | null;
  /** Temporary directory for SQLite files, logs and profiles. */
  workDir: string;
  project: BenchProject;
  log: (line: string) => void;
}

export interface Measurement {
  scenario: string;
  /** Stable identifier, used by the targets (the name may contain N). */
  key: string;
  name: string;
  db: DbName;
  unit: string;
  runs: number[];
  /** The median of the runs. */
  value: number;
  note?: string;
}

export interface Scenario {
  name: string;
  title: string;
  /**
   * A soak: minutes long, run only by `--soak` or when named in `--scenario`, never by a plain
   * `npm run bench` or the quick CI run; its figures have a section of their own in the report.
   */
  soak?: boolean;
  /** The databases it applies to (default: all). */
  dbs?: readonly DbName[];
  /** How it is measured, for docs/benchmarks.md. */
  method: (sizes: Sizes) => string;
  run(ctx: Context): Promise<Measurement[]>;
}

/** A measurement from its runs. */
export function measured(scenario: string, key: string, name: string, db: DbName, unit: string, runs: number[], note?: string): Measurement {
  const m: Measurement = { scenario, key, name, db, unit, runs, value: median(runs) };
  if (note) m.note = note;
  return m;
}

/** `1,000` → `1k`, `1,000,000` → `1M`: for names that contain a size. */
export function count(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1_000 && n % 1_000 === 0) return `${n / 1_000}k`;
  return String(n);
}

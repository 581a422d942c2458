/**
 * The benchmark suite of issue 8: `npm run bench [-- options]`. Runs every scenario on every
 * configured database (SQLite always; MariaDB/MySQL and PostgreSQL when BGTASKS_TEST_MYSQL_URL /
 * BGTASKS_TEST_PG_URL are set), prints the figures and the targets, and writes
 * docs/benchmarks.md in full mode. See bench/README.md.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getSettings } from '../core/index.js';
import { ensureBuilt } from './lib/build.js';
import { killChildren, makeProject, REPO } from './lib/cli.js';
import { configuredTargets, databaseVersion, DB_NAMES, dropAllLive, type DbName } from './lib/databases.js';
import { describeMachine, loadAverage, speedProbe } from './lib/machine.js';
import { consoleReport, dbLabel, markdownReport, mergeReport, soakReport } from './lib/report.js';
import { SIZES, type Context, type Measurement, type Mode, type Scenario } from './lib/scenario.js';
import { evaluateTargets } from './lib/targets.js';
import { coldStartScenario } from './scenarios/cold-start.js';
import { enqueueScenario } from './scenarios/enqueue.js';
import { flowScenario } from './scenarios/flow.js';
import { latencyScenario } from './scenarios/latency.js';
import { longTransactionScenario } from './scenarios/longtx.js';
import { memoryScenario } from './scenarios/memory.js';
import { metricsScenario } from './scenarios/metrics.js';
import { processScenario } from './scenarios/process.js';
import { scaleScenario } from './scenarios/scale.js';
import { sqliteSoakScenario } from './scenarios/sqlite-soak.js';
import { dashboardScenario } from './scenarios/dashboard.js';
import { startupScenario } from './scenarios/startup.js';

const SCENARIOS: Scenario[] = [
  enqueueScenario,
  processScenario,
  latencyScenario,
  scaleScenario,
  flowScenario,
  memoryScenario,
  coldStartScenario,
  startupScenario,
  dashboardScenario,
  metricsScenario,
  // Soaks: only with --soak, or when named in --scenario.
  longTransactionScenario,
  sqliteSoakScenario,
];
const REPORT = path.join(REPO, 'docs', 'benchmarks.md');

const USAGE = `Usage: npm run bench [-- options]

  --quick             small N and one run per figure (CI; under 2 minutes); does not write the docs
  --soak              run the soaks instead (${SCENARIOS.filter((s) => s.soak).map((s) => s.name).join(', ')}: about 45 minutes with both
                      server databases); they write only the soak section of docs/benchmarks.md
  --soak-seconds N    shorten the soaks: N seconds per measured window instead of the issue's
                      (600 s per phase for longtx, 60 s for sqlite-soak); does not write the docs
  --write             write docs/benchmarks.md (the default in full mode, and with --soak, without filters)
  --no-write          do not write docs/benchmarks.md
  --db LIST           only these databases: ${DB_NAMES.join(',')}
  --scenario LIST     only these scenarios (soaks included): ${SCENARIOS.map((s) => s.name).join(',')}
  --runs N            runs per figure (default 3, quick mode 1; the median is reported)
  --prefetch P        pass --prefetch P to the spawned workers (default: the library's default)
  -h, --help          this text

MariaDB/MySQL and PostgreSQL are measured when BGTASKS_TEST_MYSQL_URL / BGTASKS_TEST_PG_URL are set.`;

interface Options {
  mode: Mode;
  write: boolean;
  dbs: DbName[] | null;
  scenarios: Scenario[];
  runs: number;
  prefetch: number | null;
  /** --soak-seconds, or null for the issue's durations. */
  soakSeconds: number | null;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T[] | null {
  if (value === undefined) return null;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) fail(`unknown ${flag} value "${i}" — expected some of ${allowed.join(', ')}`);
  return items as T[];
}

function integer(value: string | undefined, flag: string, min: number): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`invalid ${flag} "${value}" — expected an integer >= ${min}`);
  return n;
}

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        write: { type: 'boolean' },
        'no-write': { type: 'boolean' },
        db: { type: 'string' },
        scenario: { type: 'string' },
        runs: { type: 'string' },
        prefetch: { type: 'string' },
        soak: { type: 'boolean' },
        'soak-seconds': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const mode: Mode = values.quick ? 'quick' : 'full';
  const dbs = list(values.db, DB_NAMES, '--db');
  const names = list(values.scenario, SCENARIOS.map((s) => s.name), '--scenario');
  const soakSeconds = integer(values['soak-seconds'], '--soak-seconds', 1);
  const filtered = dbs !== null || names !== null || soakSeconds !== null;
  if (values.write && values['no-write']) fail('--write and --no-write cannot be combined');
  if (values.soak && values.quick) fail('--soak runs the soaks at their length (shorten them with --soak-seconds): it cannot be combined with --quick');
  if (values.soak && names) fail('--soak runs every soak: name the ones you want with --scenario instead');
  // A plain run, quick or full, never runs a soak: CI's quick run keeps its length.
  const chosen = names ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS.filter((s) => (s.soak === true) === (values.soak === true));
  return {
    mode,
    // A quick, shortened or filtered run must not replace the full figures unless asked to.
    write: values.write === true || (mode === 'full' && !filtered && values['no-write'] !== true),
    dbs,
    scenarios: chosen,
    // Quick mode only has to prove that every scenario still runs: one run per figure.
    runs: integer(values.runs, '--runs', 1) ?? (mode === 'quick' ? 1 : 3),
    prefetch: integer(values.prefetch, '--prefetch', 0),
    soakSeconds,
  };
}

let stdoutGone = false;
const log = (line: string) => {
  if (!stdoutGone) process.stdout.write(`${line}\n`);
};

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const started = performance.now();
  ensureBuilt(log);
  const { targets, notices } = configuredTargets(o.dbs);
  for (const n of notices) log(`NOTICE: ${n}`);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-bench-'));
  const project = makeProject();
  const cleanUp = async () => {
    killChildren();
    try {
      await dropAllLive();
    } finally {
      // Also when dropping failed: an interrupted run must not leave its project copy behind.
      project.remove();
      rmSync(workDir, { recursive: true, force: true });
    }
  };
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('\ninterrupted: stopping the workers and dropping the bench tables …');
    void cleanUp().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `npm run bench | head`: the reader is gone. Without this the EPIPE would end the process with
  // the bench tables left in the databases; clean up as after Ctrl-C instead.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    stdoutGone = true;
    // Already interrupted (Ctrl-C reached the reader too): that cleanup is under way.
    if (!interrupted) onSignal();
  });

  const machine = describeMachine();
  const defaults = await getSettings({ env: {}, cwd: workDir });
  const workerSettings =
    `library defaults except the flags each scenario names: prefetch ${o.prefetch ?? `${defaults.prefetch} (default)`}, ` +
    `idle --sleep ${defaults.sleep} s (default), lockTimeout ${defaults.lockTimeout} s, heartbeatInterval ${defaults.heartbeatInterval} s`;
  const sizes = { ...SIZES[o.mode] };
  if (o.soakSeconds !== null) {
    sizes.longtxSeconds = o.soakSeconds;
    sizes.longtxReleaseSeconds = Math.min(sizes.longtxReleaseSeconds, o.soakSeconds);
    sizes.sqliteSoakSeconds = o.soakSeconds;
  }
  const measurements: Measurement[] = [];
  const failures: string[] = [];
  log(`bgtasks bench, ${o.mode} mode, ${o.runs} run(s) per figure, on ${targets.map((t) => dbLabel(t.name)).join(', ')}`);
  log(`${machine.cpu}, ${machine.cores} cores, ${machine.memory}, Node ${machine.node}; speed probe (node -e 0) ${machine.probeStart}`);
  try {
    for (const target of targets) {
      machine.databases[target.name] = await databaseVersion(target, workDir);
      log(`\n== ${machine.databases[target.name]}`);
      for (const s of o.scenarios) {
        if (s.dbs && !s.dbs.includes(target.name)) continue;
        const ctx: Context = { target, mode: o.mode, sizes, runs: o.runs, prefetch: o.prefetch, workDir, project, log };
        log(`-- ${s.title} [${target.name}]`);
        const t0 = performance.now();
        try {
          const ms = await s.run(ctx);
          measurements.push(...ms);
          log(`   (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        } catch (err) {
          const msg = `${s.name} on ${target.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
          failures.push(msg);
          log(`   FAILED: ${msg}`);
          await dropAllLive();
        }
      }
    }
  } finally {
    await cleanUp();
  }
  machine.loadEnd = loadAverage();
  machine.probeEnd = speedProbe();
  const results = evaluateTargets(
    measurements,
    targets.map((t) => t.name),
    o.scenarios.map((s) => s.name),
  );
  log(`\n${consoleReport(measurements, results, o.runs)}`);
  const durationS = (performance.now() - started) / 1000;
  log(`\n${results.filter((r) => r.met === true).length} of ${results.length} targets met; ${durationS.toFixed(0)} s in all.`);
  if (failures.length > 0) {
    log(`\n${failures.length} scenario(s) failed; docs/benchmarks.md is not written.`);
    return 1;
  }
  if (o.write) {
    const soaks = o.scenarios.filter((s) => s.soak);
    const others = o.scenarios.filter((s) => !s.soak);
    const input = { machine, mode: o.mode, sizes, runs: o.runs, workerSettings, measurements, results, notices, durationS };
    const main = others.length > 0 ? markdownReport({ ...input, scenarios: others, command: `npm run bench${o.mode === 'quick' ? ' -- --quick --write' : ''}` }) : null;
    const soak = soaks.length > 0 ? soakReport({ ...input, scenarios: soaks, command: `npm run bench -- ${o.soakSeconds === null ? '--soak' : `--soak --soak-seconds ${o.soakSeconds} --write`}` }) : null;
    // Each kind of run rewrites its own part of the page and keeps the other's.
    writeFileSync(REPORT, mergeReport(existsSync(REPORT) ? readFileSync(REPORT, 'utf8') : null, main, soak));
    log(`Wrote ${path.relative(process.cwd(), REPORT)}${main && soak ? '' : main ? ' (its soak section kept)' : ' (its soak section only)'}.`);
  }
  return 0;
}

process.exitCode = await main();
// Timers of the library's idle pools must not keep the process alive after the report.
process.exit();

#!/usr/bin/env node
/**
 * The bgtasks command line. Each command's module is imported only when that command runs, so
 * `process-tasks` starts without loading what it does not use.
 */
import { Command, CommanderError, Option } from 'commander';
import { runCommand } from './run-command.js';
import { EXIT } from './exit-codes.js';
import { exitWhenFlushed, guardOutput } from './output.js';
import { maskUrlsIn } from '../core/base/redact.js';
import { noteParent } from './launcher.js';

noteParent();
guardOutput();
hidePasswordsFromPs();
const program = new Command();

program
  .name('bgtasks')
  .description('Background tasks stored in your SQL database, run by a cron-friendly worker.')
  .version(await packageVersion(), '--version', 'print the version')
  // Parse errors look like every other error: one line on stderr that starts with "bgtasks:".
  .configureOutput({
    outputError: (text, write) => write(`bgtasks: ${commanderLine(text)}\n`),
  })
  // Thrown, not exited: the help text must be written out before the process ends (see below).
  .exitOverride()
  .addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 database not migrated (or migrated by a newer bgtasks).
The database comes from --database, BGTASKS_DATABASE_URL, bgtasks.config.{ts,mts,js,mjs,json},
or the default sqlite:bgtasks.sqlite3. Docs: node_modules/bgtasks/docs/cli.md (docs/ in the package).`,
  );

function dbOptions(cmd: Command): Command {
  return cmd
    .option(
      '--database <url>',
      'database URL (sqlite:path, mysql://…, mariadb://…, postgres://…); a password in it is visible to other local users (ps) while the command starts: prefer BGTASKS_DATABASE_URL or the config file',
    )
    .option('--table-prefix <prefix>', 'prefix of the bgtasks tables (default bgtasks_)')
    .option('--connection <name>', 'a named connection from the connections setting')
    .option('--connect-timeout <seconds>', 'seconds to wait for a connection to a MySQL/MariaDB or PostgreSQL server (default 10)')
    .option('--statement-timeout <seconds>', 'seconds to wait for the answer to one statement before its connection is closed (default 30)');
}

dbOptions(
  program
    .command('process-tasks')
    .description('Run the tasks that are due: load the task files, claim, execute, settle.')
    .option('--duration <seconds>', 'stop claiming after this many seconds (default 0: run until stopped)')
    .option('--batch', 'run everything that is due now, then exit 0 when nothing due is left')
    .option('--max-tasks <n>', 'exit after running this many tasks')
    .option('--sleep <seconds>', 'seconds to wait between polls when idle (default 5; fractions allowed)')
    .option('--queue <names>', 'only these queues (comma-separated); tasks without a queue are skipped; empty: every queue')
    .option('--exclude-queues <names>', 'every queue except these (tasks without a queue included); empty: excludes none')
    .option('--concurrency <n>', 'tasks run at once in this process (default 1)')
    .option('--prefetch <n|auto>', 'tasks claimed ahead of free slots (default auto: ~100 ms of work per slot, at most 500)')
    .option('--grace <seconds>', 'seconds running tasks get to finish after a stop or --duration (default 30)')
    .option('--worker-id <id>', 'this worker\'s id (default hostname:pid:random; at most 64 characters)')
    .option('--task-files <globs>', 'task files to load (comma-separated globs; default **/tasks.{ts,mts,js,mjs})')
    .option('--lock-timeout <seconds>', 'seconds without a heartbeat before a running task is recovered (default 60)')
    .option('--heartbeat-interval <seconds>', 'seconds between lease renewals (default 10)')
    .option('--liveness-timeout <seconds>', 'seconds without a liveness beat before this worker counts as gone and its running tasks are recovered early (default 12; 0: off, wait for the lease)')
    .option('--migrate', 'apply pending migrations before starting')
    // Both spellings declared: neither given leaves it undefined, for the default rule.
    .option('--startup-delay', 'wait a random delay of up to 1 s before the first claim (default: only with --duration, off a terminal)')
    .option('--no-startup-delay', 'never wait the random start-up delay')
    .option('--no-run-budget', 'with --duration: also claim tasks whose maxRunTime does not fit the time left (they may be aborted)')
    .option('--dev', 'development: restart the worker when a task file or the project\'s source changes')
    .option('--log-std', 'turn what tasks write to console/stdout/stderr into log lines tagged with the task')
    .option('--metrics-port <port>', 'serve Prometheus metrics of this worker at http://<host>:<port>/metrics (0: any free port, logged)')
    .option('--metrics-host <host>', 'with --metrics-port: the address to listen on (default 127.0.0.1)')
    .addOption(new Option('--log-format <format>', 'log line format (default human)').choices(['human', 'json']))
    .option('-v, --verbose', 'log debug lines too')
    .option('-q, --quiet', 'log only warnings and errors')
    .addHelpText(
      'after',
      `
Examples:
  $ bgtasks process-tasks --duration 300            # from crontab: */5 * * * * cd /app && npx bgtasks process-tasks --duration 300
  $ bgtasks process-tasks --batch                    # run what is due, then exit
  $ bgtasks process-tasks --queue mail,sms --concurrency 8
  $ bgtasks process-tasks --log-format json --sleep 0.5
  $ bgtasks process-tasks --metrics-port 9464          # Prometheus scrapes http://127.0.0.1:9464/metrics
  $ bgtasks process-tasks --dev --log-std            # development: reload on change

Exit codes: 0 stopped as asked (--duration, --batch, --max-tasks, SIGINT/SIGTERM), 1 runtime failure (task files, database at start, the worker's loop), 2 usage error, 3 not migrated.`,
    ),
).action(async (flags) => {
  const { processTasks } = await import('./commands/process-tasks.js');
  await runCommand(() => processTasks(flags));
});

dbOptions(
  program
    .command('migrate')
    .description('Create or upgrade the bgtasks tables (tracked in <prefix>migrations, apart from your own migrations).')
    .option('--status', 'list applied and pending migrations; exit 3 if any is pending')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  $ bgtasks migrate\n  $ bgtasks migrate --status --json\n  $ BGTASKS_DATABASE_URL=postgres://app@db/app bgtasks migrate'),
).action(async (flags) => {
  const { migrateCommand } = await import('./commands/migrate.js');
  await runCommand(() => migrateCommand(flags));
});

// ── Operations commands ──────────────────────────────────────────────────────────────────────

const DB_HELP = '\nExit codes: 0 ok, 1 runtime failure, 2 usage error (bad flag, unknown id or name), 3 not migrated.';

dbOptions(
  program
    .command('list')
    .description('List tasks, pending ones first (by run time), then finished ones (newest first).')
    .option('--state <states>', 'ready, running, successful or failed (comma-separated for several)')
    .option('--queue <names>', 'only these queues (comma-separated)')
    .option('--name <names>', 'only these task names (comma-separated)')
    .option('--creator <type:id>', 'only tasks scheduled by this creator, e.g. user:42')
    .option('--limit <n>', 'at most this many tasks (default 50)')
    .option('--json', 'print a JSON array')
    .addHelpText(
      'after',
      `
Examples:
  $ bgtasks list --state ready,running
  $ bgtasks list --state failed --queue mail --limit 10
  $ bgtasks list --creator user:42 --json | jq '.[].id'${DB_HELP}`,
    ),
).action(async (flags) => {
  const { listCommand } = await import('./commands/list.js');
  await runCommand(() => listCommand(flags));
});

dbOptions(
  program
    .command('show')
    .description('Show everything about one task: status, arguments, times (UTC), worker, errors with their stacks, return value.')
    .argument('<id>', 'the task id')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nExamples:\n  $ bgtasks show 42\n  $ bgtasks show 42 --json | jq .errors${DB_HELP}`),
).action(async (id: string, flags) => {
  const { showCommand } = await import('./commands/show.js');
  await runCommand(() => showCommand(id, flags));
});

dbOptions(
  program
    .command('stats')
    .description('Counts per queue and state, the oldest due task\'s wait, and the failures of the last hour.')
    .option('--queue <names>', 'only these queues (comma-separated)')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nExamples:\n  $ bgtasks stats\n  $ bgtasks stats --queue mail --json${DB_HELP}`),
).action(async (flags) => {
  const { statsCommand } = await import('./commands/stats.js');
  await runCommand(() => statsCommand(flags));
});

const queuesCmd = dbOptions(
  program
    .command('queues')
    .description('Queues with their counts, paused state and limits; pause, resume or limit one (obeyed by every worker).')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ bgtasks queues
  $ bgtasks queues pause mail                       # running tasks finish; nothing more is claimed from mail
  $ bgtasks queues resume mail
  $ bgtasks queues set mail --concurrency 5 --rate 50/2   # at most 5 running, 50 starts per 2 s
  $ bgtasks queues set mail --concurrency none --rate none${DB_HELP}`,
    ),
)
  // A word that is none of the subcommands reached the listing as an extra argument ("too many
  // arguments for 'queues'"): named as the unknown subcommand it is.
  .argument('[subcommand]')
  .action(async (sub: string | undefined, flags) => {
    const { queuesCommand, unknownQueuesCommand } = await import('./commands/queues.js');
    await runCommand(() => (sub === undefined ? queuesCommand(flags) : unknownQueuesCommand(sub)));
  });

// The subcommands read their options with the parent's: `queues` declares the database options
// too, and commander gives an option both declare to the parent (--database was ignored).
dbOptions(queuesCmd.command('pause').description('Pause a queue (also one not used yet): no worker claims its tasks until it is resumed.').argument('<name>', 'the queue')).action(
  async (name: string, _flags, cmd: Command) => {
    const { pauseCommand } = await import('./commands/queues.js');
    await runCommand(() => pauseCommand(name, cmd.optsWithGlobals()));
  },
);

dbOptions(queuesCmd.command('resume').description('Resume a paused queue.').argument('<name>', 'the queue')).action(async (name: string, _flags, cmd: Command) => {
  const { resumeCommand } = await import('./commands/queues.js');
  await runCommand(() => resumeCommand(name, cmd.optsWithGlobals()));
});

dbOptions(
  queuesCmd
    .command('set')
    .description("Set a queue's limits across every worker.")
    .argument('<name>', 'the queue')
    .option('--concurrency <n|none>', 'at most this many of its tasks RUNNING at once')
    .option('--rate <limit/seconds|none>', 'at most LIMIT starts in any window of SECONDS (e.g. 50/2, 100/1m)')
    .option('--rate-per-key', 'count the rate limit per concurrency key'),
).action(async (name: string, _flags, cmd: Command) => {
  const { setCommand } = await import('./commands/queues.js');
  await runCommand(() => setCommand(name, cmd.optsWithGlobals()));
});

dbOptions(
  program
    .command('why')
    .description("Why isn't a task running? Every reason: not due, queue paused, a full limit and who holds it, a rate window, tasks ahead, no worker, its lease.")
    .argument('<id>', 'the task id')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nExit codes: 0 it runs (or can run) now, 1 something holds it back, 2 unknown id or bad flag, 3 not migrated.\n\nExamples:\n  $ bgtasks why 42\n  $ bgtasks why 42 --json | jq '.reasons[].code'`),
).action(async (id: string, flags) => {
  const { whyCommand } = await import('./commands/why.js');
  await runCommand(() => whyCommand(id, flags));
});

dbOptions(
  program
    .command('workers')
    .description('Live workers from the worker registry: host, pid, version, queues, concurrency, running tasks, last heartbeat.')
    .option('--all', 'also workers gone within the last day (stopped, or lost)')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nExamples:\n  $ bgtasks workers\n  $ bgtasks workers --all --json${DB_HELP}`),
).action(async (flags) => {
  const { workersCommand } = await import('./commands/workers.js');
  await runCommand(() => workersCommand(flags));
});

dbOptions(
  program
    .command('schedules')
    .description('Cron schedules declared in task files (background({ cron })): zone, last and next slot, pending instances, last seen.')
    .option('--json', 'print JSON')
    .option('--remove <task[:key]>', 'delete the record of a schedule no task file declares any more (pending tasks stay)')
    .addHelpText('after', `\nExamples:\n  $ bgtasks schedules\n  $ bgtasks schedules --json\n  $ bgtasks schedules --remove nightlyReport:default${DB_HELP}`),
).action(async (flags) => {
  const { schedulesCommand } = await import('./commands/schedules.js');
  await runCommand(() => schedulesCommand(flags));
});

dbOptions(
  program
    .command('health')
    .description('Exit 0 when no due task has waited longer than --max-wait seconds (and the last hour\'s failures are under --max-failures, and --min-workers live workers are registered), else exit 1 with the reason.')
    .requiredOption('--max-wait <seconds>', 'required: longest acceptable wait of a due task')
    .option('--max-failures <n>', 'unhealthy when this many tasks failed in the last hour (default: no limit)')
    .option('--min-workers <n>', 'unhealthy when fewer live workers are in the worker registry (with --queue: serving each queue)')
    .option('--queue <names>', 'only these queues (comma-separated)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ bgtasks health --max-wait 600
  $ bgtasks health --max-wait 300 --max-failures 20 || notify-ops   # crontab alerting
  $ bgtasks health --max-wait 300 --min-workers 2 --queue mail

Exit codes: 0 healthy, 1 unhealthy (or a runtime failure), 2 usage error, 3 not migrated.`,
    ),
).action(async (flags) => {
  const { healthCommand } = await import('./commands/health.js');
  await runCommand(() => healthCommand(flags));
});

dbOptions(
  program
    .command('enqueue')
    .description('Enqueue a call of a registered task (the task files are loaded as process-tasks loads them).')
    .argument('<name>', 'the task name')
    .option('--args <json>', 'the arguments as a JSON array (default [])')
    .option('--in <seconds>', 'run this many seconds from now (default: the task\'s schedule, or now)')
    .option('--queue <name>', 'the queue (default: the task\'s)')
    .option('--priority <n>', 'the priority, an integer (default: the task\'s, or 0)')
    .option('--task-files <globs>', 'task files to load (comma-separated globs; default **/tasks.{ts,mts,js,mjs})')
    .option('--json', 'print the TaskRef as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ bgtasks enqueue sendWelcomeEmail --args '["ada@example.com"]'
  $ bgtasks enqueue rebuildIndex --in 3600 --queue maintenance --priority 5
  $ bgtasks enqueue report --args '[{"month": "2030-01"}]' --json${DB_HELP}`,
    ),
).action(async (name: string, flags) => {
  const { enqueueCommand } = await import('./commands/enqueue.js');
  await runCommand(() => enqueueCommand(name, flags));
});

dbOptions(
  program
    .command('retry')
    .description('Enqueue FAILED tasks again as new pending tasks (same call, attempts 0, due now); the failed records stay.')
    .argument('[ids...]', 'ids of failed tasks')
    .option('--failed', 'every failed task (narrowed by --since, --queue, --name)')
    .option('--since <when>', 'with --failed: failed within this many seconds, or since this ISO time (UTC)')
    .option('--queue <names>', 'with --failed: only these queues (comma-separated)')
    .option('--name <names>', 'with --failed: only these task names (comma-separated)')
    .option('--limit <n>', 'with --failed: at most this many tasks')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ bgtasks retry 42 43
  $ bgtasks retry --failed --since 3600 --queue mail
  $ bgtasks retry --failed --since 2030-01-01T00:00:00Z --name sendWelcomeEmail --json${DB_HELP}`,
    ),
).action(async (ids: string[], flags) => {
  const { retryCommand } = await import('./commands/retry.js');
  await runCommand(() => retryCommand(ids, flags));
});

dbOptions(
  program
    .command('delete')
    .description('Delete pending or finished tasks. A RUNNING task is refused unless --force.')
    .argument('<ids...>', 'task ids')
    .option('--force', 'delete RUNNING tasks too (their worker finds its lease gone and drops the result)')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nExamples:\n  $ bgtasks delete 42 43\n  $ bgtasks delete 44 --force${DB_HELP}`),
).action(async (ids: string[], flags) => {
  const { deleteCommand } = await import('./commands/delete.js');
  await runCommand(() => deleteCommand(ids, flags));
});

dbOptions(
  program
    .command('cancel')
    .description('Cancel tasks: a READY one becomes FAILED (cancelled) now; a RUNNING one is aborted at its worker\'s next heartbeat.')
    .argument('<ids...>', 'task ids')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nExamples:\n  $ bgtasks cancel 42\n  $ bgtasks cancel 42 43 --json${DB_HELP}`),
).action(async (ids: string[], flags) => {
  const { cancelCommand } = await import('./commands/cancel.js');
  await runCommand(() => cancelCommand(ids, flags));
});

dbOptions(
  program
    .command('run-now')
    .description('Make READY tasks due now: one scheduled for later or waiting out a retry\'s backoff runs at the next claim.')
    .argument('<ids...>', 'task ids')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nExamples:\n  $ bgtasks run-now 42\n  $ bgtasks run-now 42 43 --json${DB_HELP}`),
).action(async (ids: string[], flags) => {
  const { runNowCommand } = await import('./commands/run-now.js');
  await runCommand(() => runNowCommand(ids, flags));
});

dbOptions(
  program
    .command('dashboard')
    .description('Serve the web dashboard (tasks, failures, schedules, workers, actions) until Ctrl-C.')
    .option('--port <n>', 'port to listen on (default 7878; 0 picks a free one)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1); an address other than loopback needs BGTASKS_DASHBOARD_AUTH')
    .option('--base-path <path>', 'URL path to serve under, e.g. /admin/queue (default /)')
    .option('--read-only', 'show no action and refuse every action request')
    .addHelpText(
      'after',
      `
Environment: BGTASKS_DASHBOARD_AUTH, a password (browsers sign in with any user name) or a Bearer token.
Examples:
  $ bgtasks dashboard
  $ BGTASKS_DASHBOARD_AUTH=s3cret bgtasks dashboard --host 0.0.0.0 --read-only${DB_HELP}`,
    ),
).action(async (flags) => {
  const { dashboardCommand } = await import('./commands/dashboard.js');
  await runCommand(() => dashboardCommand(flags));
});

dbOptions(
  program
    .command('prune-results')
    .description('Delete finished tasks (successful and failed) older than --days, in small batches; pending and running tasks are never touched.')
    .option('--days <n>', 'delete results finished more than this many days ago (default 30; 0 = all)')
    .option('--failed-days <n>', 'keep failed tasks this many days instead (default: the --days value; 0 = prune every failed task)')
    .option('--queue <names>', 'only these queues (comma-separated)')
    .option('--dry-run', 'count what would be deleted; delete nothing')
    .option('--batch-size <n>', 'rows per DELETE statement (default 2000)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ bgtasks prune-results                           # from crontab: 17 3 * * * cd /app && npx bgtasks prune-results
  $ bgtasks prune-results --days 7 --failed-days 90
  $ bgtasks prune-results --days 1 --queue reports --dry-run${DB_HELP}`,
    ),
).action(async (flags) => {
  const { pruneResultsCommand } = await import('./commands/prune-results.js');
  await runCommand(() => pruneResultsCommand(flags));
});

/**
 * A password on the command line is readable by every local user (ps, /proc/PID/cmdline). Rewrite
 * what they see as soon as this process runs. Node can only replace the whole title, which on
 * Linux also becomes the process name (comm, the first 15 characters), so this happens only when
 * there is a password to hide. Children (--dev) get the URL through their environment instead.
 */
function hidePasswordsFromPs(): void {
  const args = process.argv.slice(1);
  const masked = args.map((a) => maskUrlsIn(a));
  if (masked.some((a, i) => a !== args[i])) process.title = [process.argv0, ...masked].join(' ');
}

/** Commander's "error: unknown option '--x'\n(Did you mean --y?)" as one line, with a pointer to --help. */
function commanderLine(text: string): string {
  // Commander ends some messages with a full stop ("Allowed choices are human, json."): the
  // pointer follows the dash alone.
  const line = text.replace(/^error: /, '').trim().split(/\s*\n\s*/).join(' ').replace(/\.$/, '');
  return `${line} — run with --help for usage`;
}

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  // dist/cli/index.js in a build or a package; cli/index.ts when run from the source tree.
  const up = /\/dist\/cli\/[^/]+$/.test(import.meta.url) ? '../../package.json' : '../package.json';
  const pkg = JSON.parse(await readFile(new URL(up, import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const HELP_CODES = ['commander.helpDisplayed', 'commander.version', 'commander.help'];

/** `help NAME` where no command is NAME: commander printed the general help and exited 0. */
function unknownHelpTopic(argv: readonly string[]): string | null {
  const [first, topic] = argv.slice(2);
  if (first !== 'help' || topic === undefined || topic.startsWith('-')) return null;
  return program.commands.some((c) => c.name() === topic || c.aliases().includes(topic)) ? null : topic;
}

const topic = unknownHelpTopic(process.argv);
if (topic !== null) {
  process.stderr.write(`bgtasks: ${commanderLine(`unknown command '${topic}'`)}\n`);
  process.exitCode = EXIT.USAGE;
} else {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    process.exitCode = HELP_CODES.includes(err.code) ? EXIT.OK : EXIT.USAGE;
  }
}
// The command is done. Timers or pools that task code left open (an abandoned task's timer, the
// application's own database pool) must not keep a cron-launched process alive; what it printed
// must still reach a slow reader.
await exitWhenFlushed(Number(process.exitCode ?? EXIT.OK));

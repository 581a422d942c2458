#!/usr/bin/env node
/**
 * The bgtasks command line. Each command's module is imported only when that command runs, so
 * `process-tasks` starts without loading what it does not use.
 */
import { Command, CommanderError, Option } from 'commander';
import { runCommand } from './common.js';
import { EXIT } from './exit-codes.js';

const program = new Command();

program
  .name('bgtasks')
  .description('Background tasks stored in your SQL database, run by a cron-friendly worker.')
  .version(await packageVersion(), '--version', 'print the version')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride((err: CommanderError) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(EXIT.OK);
    process.exit(EXIT.USAGE);
  })
  .addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 database not migrated.
The database comes from --database, BGTASKS_DATABASE_URL, bgtasks.config.{ts,mts,js,mjs,json},
or the default sqlite:bgtasks.sqlite3. Docs: docs/cli.md.`,
  );

function dbOptions(cmd: Command): Command {
  return cmd
    .option('--database <url>', 'database URL (sqlite:path, mysql://…, mariadb://…, postgres://…)')
    .option('--table-prefix <prefix>', 'prefix of the bgtasks tables (default bgtasks_)')
    .option('--connection <name>', 'a named connection from the connections setting');
}

dbOptions(
  program
    .command('process-tasks')
    .description('Run the tasks that are due: load the task files, claim, execute, settle.')
    .option('--duration <seconds>', 'stop claiming after this many seconds (0 = run until stopped)', '0')
    .option('--batch', 'run everything that is due now, then exit 0 when nothing due is left')
    .option('--max-tasks <n>', 'exit after running this many tasks')
    .option('--sleep <seconds>', 'seconds to wait between polls when idle (default 5; fractions allowed)')
    .option('--queue <names>', 'only these queues (comma-separated); tasks without a queue are skipped')
    .option('--exclude-queues <names>', 'every queue except these (tasks without a queue included)')
    .option('--concurrency <n>', 'tasks run at once in this process (default 1)')
    .option('--prefetch <n>', 'tasks claimed ahead of free slots')
    .option('--grace <seconds>', 'seconds running tasks get to finish after a stop or --duration (default 30)')
    .option('--worker-id <id>', 'this worker\'s id (default hostname:pid:random; at most 64 characters)')
    .option('--task-files <globs>', 'task files to load (comma-separated globs; default **/tasks.{ts,mts,js,mjs})')
    .option('--lock-timeout <seconds>', 'seconds without a heartbeat before a running task is recovered (default 60)')
    .option('--heartbeat-interval <seconds>', 'seconds between lease renewals (default 10)')
    .option('--migrate', 'apply pending migrations before starting')
    .option('--no-startup-delay', 'skip the random start-up delay of up to 1 s')
    .addOption(new Option('--log-format <format>', 'log line format').choices(['human', 'json']))
    .option('-v, --verbose', 'log debug lines too')
    .option('-q, --quiet', 'log only warnings and errors')
    .addHelpText(
      'after',
      `
Examples:
  $ bgtasks process-tasks --duration 300            # from crontab: */5 * * * * cd /app && npx bgtasks process-tasks --duration 300
  $ bgtasks process-tasks --batch                    # run what is due, then exit
  $ bgtasks process-tasks --queue mail,sms --concurrency 8
  $ bgtasks process-tasks --log-format json --sleep 0.5`,
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

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(EXIT.USAGE);
  throw err;
}
// The command is done. Timers or pools that task code left open (an abandoned task's timer, the
// application's own database pool) must not keep a cron-launched process alive.
process.exit(process.exitCode ?? EXIT.OK);

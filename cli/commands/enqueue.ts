/**
 * `bgtasks enqueue NAME --args '[…]'`: enqueue a call of a registered task from the shell. The
 * task files are loaded as process-tasks loads them, the arguments are checked by the same rules
 * as a call in code, and the task is stored by the same enqueue (its definition's defaults and
 * dedupe action apply).
 */
import { configure, getSettings, resolveSettings } from '../../core/config/settings.js';
import { enqueueCall } from '../../core/api/enqueue.js';
import { isErrorKind, UnknownTaskError } from '../../core/errors.js';
import { discoverTasks } from '../../core/definition/loader.js';
import { ensureMigrated } from '../../core/store/migrate.js';
import { getRegistered, registeredNames } from '../../core/definition/registry.js';
import { schedule, type ScheduleOptions } from '../../core/api/schedule.js';
import { MAX_RUN_SECONDS } from '../../core/worker/options.js';
import { reachableStore } from '../../core/store/open.js';
import { flagSetting, numberFlag, overridesFrom, UsageError } from '../flags.js';
import { EXIT } from '../exit-codes.js';
import { iso, json, line, queueLabel } from '../format.js';
import { refuseMissingSqliteFile, type StoreFlags } from '../open-store.js';

export interface EnqueueFlags extends StoreFlags {
  args?: string;
  in?: string;
  queue?: string;
  priority?: string;
  taskFiles?: string;
}

/** `--args`: a JSON array of the call's arguments. */
export function parseArgsFlag(value: string | undefined): unknown[] {
  if (value === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new UsageError(`Invalid --args: ${(err as Error).message} — expected a JSON array of the arguments, e.g. --args '["ada@example.com", 3]'`);
  }
  if (!Array.isArray(parsed)) {
    throw new UsageError(`Invalid --args: ${value.length > 60 ? `${value.slice(0, 60)}…` : value} is not a JSON array — pass the arguments as an array, e.g. --args '[${value.length > 60 ? '…' : value}]'`);
  }
  return parsed;
}

/** As far ahead as a worker's --duration goes: past it, the flag is a typo. */
const MAX_IN_SECONDS = MAX_RUN_SECONDS;

export async function enqueueCommand(name: string, flags: EnqueueFlags): Promise<number> {
  const args = parseArgsFlag(flags.args);
  // Bounded here: past it, schedule()'s own limits are worded for code (an epoch second, a Date).
  const inSeconds = numberFlag(flags.in, '--in', `seconds from now >= 0 and at most ${MAX_IN_SECONDS} (100 years; fractions allowed)`, (n) => n >= 0 && n <= MAX_IN_SECONDS);
  const priority = numberFlag(flags.priority, '--priority', 'an integer', (n) => Number.isInteger(n));
  const overrides = overridesFrom(flags);
  if (flags.taskFiles !== undefined) overrides.taskFiles = flagSetting('taskFiles', flags.taskFiles, '--task-files') as string[];
  const loading = await resolveSettings({ overrides });
  await discoverTasks(loading.taskFiles, loading.taskFilesBase);
  const def = getRegistered(name);
  if (!def) {
    const known = registeredNames();
    throw new UnknownTaskError(`Unknown task "${name}" — the task files register: ${known.length > 0 ? known.join(', ') : '(none)'}`);
  }
  const options: ScheduleOptions = {};
  if (flags.queue !== undefined) options.queue = flags.queue;
  if (priority !== undefined) options.priority = priority;
  if (flags.connection !== undefined) options.connection = flags.connection;
  // Checked now, before any database work: bad values are usage errors that name the flag.
  let sched: ReturnType<typeof schedule>;
  try {
    sched = schedule(inSeconds, options);
  } catch (err) {
    if (!isErrorKind(err, 'ValidationError')) throw err;
    // Worded for code: the flag's name, and no `or null` (a command line has no null).
    const text = (err as Error).message.replace(/^Invalid (queue|priority) in schedule\(\) options: /, 'Invalid --$1: ').replace(/^Invalid schedule\(when\): /, 'Invalid --in: ');
    throw new UsageError(text.replace(/ or null$/, ''));
  }
  // The flags win over what the task files may have configured: applied after loading them.
  // From the shell the task is always stored: the immediate and dummy modes would run or record
  // it in this short-lived process only.
  configure({ ...overrides, mode: 'normal' });
  const settings = await getSettings();
  refuseMissingSqliteFile(settings, flags.connection ?? def.options.connection);
  const store = await reachableStore(settings, flags.connection ?? def.options.connection);
  await ensureMigrated(store.conn, settings.tablePrefix);
  const ref = await enqueueCall(def, args, sched);
  if (flags.json) {
    json({ id: ref.id, name: ref.name, queue: ref.queue, runAt: ref.runAt, outcome: ref.outcome });
  } else {
    line(`${ref.outcome === 'existing' ? 'Already pending' : ref.outcome === 'rescheduled' ? 'Rescheduled' : 'Enqueued'} ${ref.name} #${ref.id} (queue ${queueLabel(ref.queue)}, runs at ${iso(ref.runAt)}, ${ref.outcome})`);
  }
  return EXIT.OK;
}

/**
 * Every setting, its default and its validation, in one place.
 *
 * Precedence (DECISIONS.md): CLI flags > `configure()` > `BGTASKS_*` environment variables >
 * `bgtasks.config.{ts,mts,js,mjs,json}` (searched upward from the working directory) > defaults.
 * Environment variables that bgtasks does not know are ignored; known ones with bad values are
 * errors naming the variable.
 */
import { closestName } from '../base/suggest.js';
import type { RateLimit } from '../policy/flow.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { ConfigError } from '../errors.js';
import { processWide } from '../base/global.js';
import { parseDatabase, type DatabaseSetting, type DatabaseSpec } from './database-spec.js';
import { describeValue, parseWithSpec, SETTING_SPECS, type SettingName } from './settings-spec.js';
import { DEFAULT_LIVENESS_TIMEOUT } from '../policy/liveness.js';

export type { DatabaseSetting, DatabaseSpec };

/** Resolved settings. Durations are in seconds (fractions allowed). */
export interface Settings {
  /** The database: a URL, a knex config object or a knex instance. Default: `sqlite:bgtasks.sqlite3`. */
  database: DatabaseSpec;
  /** Other named databases; a task picks one with its `connection` option. */
  connections: Record<string, DatabaseSpec>;
  /** Prefix of every table bgtasks creates. Default `bgtasks_`. */
  tablePrefix: string;
  /** Attempts before a task fails for good. Default 25. */
  maxAttempts: number;
  /** Seconds an attempt may run before it is aborted and counted as failed. Default 3600. */
  maxRunTime: number;
  /** `DESC` runs higher priorities first (default), `ASC` lower ones. */
  priorityOrdering: 'DESC' | 'ASC';
  /** Tasks one worker process runs at once. Default 1. */
  concurrency: number;
  /**
   * Extra tasks a worker claims ahead of its free slots (leases kept alive, released on stop), or
   * `auto` (default): about 100 ms of work per slot, from the measured task durations, at most 500.
   */
  prefetch: number | 'auto';
  /** Globs of task files, relative to `taskFilesBase`. */
  taskFiles: string[];
  /** The directory task-file globs are relative to (the config file's, or the working directory). */
  taskFilesBase: string;
  /** Seconds without a heartbeat after which a running task's lease expires. Default 60. */
  lockTimeout: number;
  /** Seconds between lease renewals. Default 10. */
  heartbeatInterval: number;
  /** Seconds an idle worker sleeps between polls. Default 5. */
  sleep: number;
  /** IANA time zone for cron recurrences. Default `UTC`. */
  timezone: string;
  /** Largest accepted JSON size of a task's arguments, in bytes. Default 1 MiB. */
  maxArgsBytes: number;
  /** Times a task may put itself back with ctx.snooze() before it fails (TooManySnoozesError). Default 100. */
  maxSnoozes: number;
  /** Largest JSON size of a task's return value that is stored, in bytes. Default 1 MiB. */
  maxResultBytes: number;
  /** `normal` stores tasks; `immediate` runs them inline at enqueue; `dummy` records them in memory. */
  mode: 'normal' | 'immediate' | 'dummy';
  /** Largest number of pending tasks per queue name; enqueue into a full queue throws. */
  maxQueueSize: Record<string, number>;
  /** Limits of queues, written to the queues table by every worker at start (docs/flow-control.md). */
  queues: Record<string, { concurrency?: number | null; rateLimit?: RateLimit | null }>;
  /** Failed-attempt records kept per task (the newest ones). Default 10. */
  errorsKept: number;
  /**
   * Seconds after its time within which a cron slot still runs when a worker first sees it;
   * older slots were missed and follow the schedule's `catchUp`. Default 300 (at least 3 polls).
   */
  cronGrace: number;
  /**
   * PostgreSQL: a direct connection for the worker's LISTEN (new-task wake-ups), when `database`
   * goes through a pooler in transaction mode, where LISTEN does nothing. Default: none (the
   * worker listens on a connection of its `database` pool).
   */
  listenUrl: DatabaseSpec | null;
  /**
   * MySQL/MariaDB and PostgreSQL: seconds to wait for a connection, whether a new one is being
   * opened (TCP, TLS and login) or every pooled one is busy. Default 10: a healthy server on the
   * same network answers in milliseconds, and a web request should not wait longer for an enqueue.
   */
  connectTimeout: number;
  /**
   * MySQL/MariaDB and PostgreSQL: seconds bgtasks waits for the answer to one statement before it
   * gives up on it and closes its connection (the statement may still complete on the server).
   * Default 30: far above any statement bgtasks sends on a healthy server, well below the minutes
   * TCP takes to notice a dead peer. Migrations are exempt.
   */
  statementTimeout: number;
  /**
   * MySQL/MariaDB and PostgreSQL: seconds without a liveness beat after which a worker counts as
   * dead, stopped or cut off, and any worker may recover its running tasks before their lease
   * runs out (docs/reliability.md). The beat comes from a thread of the worker's own, so a task
   * that blocks the event loop does not stop it; a worker whose beats stop landing for two thirds
   * of this stops its own running attempts. Default 12; 0 turns the beat off (tasks then wait for
   * their lease, as before); otherwise at least 9.
   */
  livenessTimeout: number;
  /** Where the settings came from, for `bgtasks config` and error messages. */
  configFile: string | null;
}

/** What `configure()` and a config file accept. */
export interface SettingsInput {
  database?: DatabaseSetting;
  connections?: Record<string, DatabaseSetting>;
  tablePrefix?: string;
  maxAttempts?: number;
  maxRunTime?: number;
  priorityOrdering?: 'DESC' | 'ASC';
  concurrency?: number;
  prefetch?: number | 'auto';
  taskFiles?: string | string[];
  lockTimeout?: number;
  heartbeatInterval?: number;
  sleep?: number;
  timezone?: string;
  maxArgsBytes?: number;
  maxSnoozes?: number;
  maxResultBytes?: number;
  mode?: 'normal' | 'immediate' | 'dummy';
  maxQueueSize?: Record<string, number>;
  queues?: Record<string, { concurrency?: number | null; rateLimit?: RateLimit | null }>;
  errorsKept?: number;
  cronGrace?: number;
  listenUrl?: string | null;
  connectTimeout?: number;
  statementTimeout?: number;
  livenessTimeout?: number;
}

/** Seconds: see Settings.connectTimeout and Settings.statementTimeout. */
export const DEFAULT_CONNECT_TIMEOUT = 10;
export const DEFAULT_STATEMENT_TIMEOUT = 30;

export const DEFAULT_TASK_FILES = ['**/tasks.{ts,mts,js,mjs}'];
export const TASK_FILES_IGNORE = ['**/node_modules/**', '**/dist/**', '**/.git/**'];
export const CONFIG_FILE_NAMES = [
  'bgtasks.config.ts',
  'bgtasks.config.mts',
  'bgtasks.config.js',
  'bgtasks.config.mjs',
  'bgtasks.config.json',
];

const ENV_NAMES: Record<string, SettingName | 'listenUrl'> = {
  BGTASKS_DATABASE_URL: 'database',
  BGTASKS_TABLE_PREFIX: 'tablePrefix',
  BGTASKS_MAX_ATTEMPTS: 'maxAttempts',
  BGTASKS_MAX_RUN_TIME: 'maxRunTime',
  BGTASKS_PRIORITY_ORDERING: 'priorityOrdering',
  BGTASKS_CONCURRENCY: 'concurrency',
  BGTASKS_PREFETCH: 'prefetch',
  BGTASKS_TASK_FILES: 'taskFiles',
  BGTASKS_LOCK_TIMEOUT: 'lockTimeout',
  BGTASKS_HEARTBEAT_INTERVAL: 'heartbeatInterval',
  BGTASKS_SLEEP: 'sleep',
  BGTASKS_TIMEZONE: 'timezone',
  BGTASKS_MAX_ARGS_BYTES: 'maxArgsBytes',
  BGTASKS_MAX_SNOOZES: 'maxSnoozes',
  BGTASKS_MAX_RESULT_BYTES: 'maxResultBytes',
  BGTASKS_MODE: 'mode',
  BGTASKS_ERRORS_KEPT: 'errorsKept',
  BGTASKS_CRON_GRACE: 'cronGrace',
  BGTASKS_LISTEN_URL: 'listenUrl',
  BGTASKS_CONNECT_TIMEOUT: 'connectTimeout',
  BGTASKS_STATEMENT_TIMEOUT: 'statementTimeout',
  BGTASKS_LIVENESS_TIMEOUT: 'livenessTimeout',
};
export const ENV_VARIABLES = Object.keys(ENV_NAMES);

interface ConfigState {
  configured: Partial<Settings>;
  cache: Map<string, Promise<Settings>>;
}

const state = processWide<ConfigState>('config', () => ({ configured: {}, cache: new Map() }));

/**
 * Sets settings for this process; they win over the environment and the config file. Values are
 * validated now. Call it before the first enqueue (a later call applies to what comes after it).
 */
export function configure(input: SettingsInput): void {
  const parsed = parseInput(input, 'configure()', process.cwd());
  const configured = { ...state.configured, ...parsed };
  // Checked at once where configure() has set both (the other sources are met when the settings
  // are resolved), and nothing is stored: a bad pair otherwise surfaced only at a worker's start.
  const { heartbeatInterval: hb, lockTimeout: lt } = configured;
  if (hb !== undefined && lt !== undefined && hb >= lt) {
    // Named by what this call set: the lockTimeout when it set only that.
    if (parsed.heartbeatInterval === undefined) {
      throw new ConfigError(`Invalid lockTimeout (from configure()): ${lt} — expected more seconds than heartbeatInterval (${hb}), or leases expire between heartbeats`);
    }
    throw new ConfigError(`Invalid heartbeatInterval (from configure()): ${hb} — expected fewer seconds than lockTimeout (${lt}), or leases expire between heartbeats`);
  }
  state.configured = configured;
  state.cache.clear();
}

/** Forgets everything `configure()` set (for tests). */
export function resetConfiguration(): void {
  state.configured = {};
  state.cache.clear();
}

export interface ResolveOptions {
  cwd?: string;
  /** CLI flags: they win over every other source. */
  overrides?: SettingsInput;
  env?: NodeJS.ProcessEnv;
}

/** The settings of this process (cached per working directory). */
export function getSettings(options: ResolveOptions = {}): Promise<Settings> {
  if (options.overrides || options.env) return resolveSettings(options);
  const cwd = options.cwd ?? process.cwd();
  let p = state.cache.get(cwd);
  if (!p) {
    p = resolveSettings({ cwd });
    p.catch(() => state.cache.delete(cwd));
    state.cache.set(cwd, p);
  }
  return p;
}

/** Resolves every source into settings, without caching. */
export async function resolveSettings(options: ResolveOptions = {}): Promise<Settings> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const file = findConfigFile(cwd);
  const fromFile = file ? parseInput(await loadConfigFile(file), `config file ${file}`, path.dirname(file)) : {};
  const fromEnv = parseEnv(env, cwd);
  const fromCli = options.overrides ? parseInput(options.overrides, 'command line', cwd) : {};
  const merged: Partial<Settings> = { ...fromFile, ...fromEnv, ...state.configured, ...fromCli };
  const settings: Settings = {
    database: merged.database ?? parseDatabase('sqlite:bgtasks.sqlite3', cwd, 'default database'),
    connections: merged.connections ?? {},
    tablePrefix: merged.tablePrefix ?? 'bgtasks_',
    maxAttempts: merged.maxAttempts ?? 25,
    maxRunTime: merged.maxRunTime ?? 3600,
    priorityOrdering: merged.priorityOrdering ?? 'DESC',
    concurrency: merged.concurrency ?? 1,
    prefetch: merged.prefetch ?? 'auto',
    taskFiles: merged.taskFiles ?? DEFAULT_TASK_FILES,
    taskFilesBase: merged.taskFilesBase ?? cwd,
    lockTimeout: merged.lockTimeout ?? 60,
    heartbeatInterval: merged.heartbeatInterval ?? 10,
    sleep: merged.sleep ?? 5,
    timezone: merged.timezone ?? 'UTC',
    maxArgsBytes: merged.maxArgsBytes ?? 1024 * 1024,
    maxSnoozes: merged.maxSnoozes ?? 100,
    maxResultBytes: merged.maxResultBytes ?? 1024 * 1024,
    mode: merged.mode ?? 'normal',
    maxQueueSize: merged.maxQueueSize ?? {},
    queues: merged.queues ?? {},
    errorsKept: merged.errorsKept ?? 10,
    cronGrace: merged.cronGrace ?? 300,
    listenUrl: merged.listenUrl ?? null,
    connectTimeout: merged.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
    statementTimeout: merged.statementTimeout ?? DEFAULT_STATEMENT_TIMEOUT,
    livenessTimeout: merged.livenessTimeout ?? DEFAULT_LIVENESS_TIMEOUT,
    configFile: file,
  };
  if (settings.heartbeatInterval >= settings.lockTimeout) {
    throw new ConfigError(
      `Invalid heartbeatInterval: ${settings.heartbeatInterval} — expected fewer seconds than lockTimeout (${settings.lockTimeout}), or leases expire between heartbeats`,
    );
  }
  return settings;
}

/** The nearest config file at or above `cwd`, or null. */
export function findConfigFile(cwd: string): string | null {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    for (const name of CONFIG_FILE_NAMES) {
      const candidate = path.join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
    if (path.dirname(dir) === dir) return null;
  }
}

async function loadConfigFile(file: string): Promise<SettingsInput> {
  let loaded: unknown;
  try {
    if (file.endsWith('.json')) {
      loaded = JSON.parse(readFileSync(file, 'utf8'));
    } else if (file.endsWith('.ts') || file.endsWith('.mts')) {
      const { tsImport } = await import('tsx/esm/api');
      loaded = await tsImport(pathToFileURL(file).href, import.meta.url);
    } else {
      loaded = await import(pathToFileURL(file).href);
    }
  } catch (err) {
    throw new ConfigError(`Cannot load config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const value = unwrapModule(loaded);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`Invalid config file ${file}: expected it to export (default) an object of settings`);
  }
  return value as SettingsInput;
}

/** ESM `default`, a CJS-compiled `default.default`, or the namespace itself. */
export function unwrapModule(mod: unknown): unknown {
  let v = mod as Record<string, unknown> | undefined;
  if (v && typeof v === 'object' && 'default' in v) v = v.default as Record<string, unknown>;
  if (v && typeof v === 'object' && Object.keys(v).length === 1 && 'default' in v && typeof v.default === 'object') {
    v = v.default as Record<string, unknown>;
  }
  return v;
}

function parseInput(input: SettingsInput, source: string, baseDir: string): Partial<Settings> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError(`Invalid settings from ${source}: expected an object, got ${describeValue(input)}`);
  }
  const out: Partial<Settings> = {};
  for (const [key, raw] of Object.entries(input)) {
    if (raw === undefined) continue;
    if (key === 'database') {
      out.database = parseDatabase(raw as DatabaseSetting, baseDir, `database (from ${source})`);
    } else if (key === 'connections') {
      out.connections = parseConnections(raw, baseDir, source);
    } else if (key === 'listenUrl') {
      out.listenUrl = raw === null ? null : parseListenUrl(raw, baseDir, `listenUrl (from ${source})`);
    } else if (key in SETTING_SPECS) {
      (out as Record<string, unknown>)[key] = parseWithSpec(key as SettingName, raw, source);
      if (key === 'taskFiles') out.taskFilesBase = baseDir;
    } else {
      const known = ['database', 'connections', 'listenUrl', ...Object.keys(SETTING_SPECS)];
      const meant = closestName(key, known);
      throw new ConfigError(`Unknown setting "${key}" (from ${source}) — ${meant ? `did you mean ${meant}? ` : ''}expected one of: ${known.join(', ')}`);
    }
  }
  return out;
}

function parseConnections(raw: unknown, baseDir: string, source: string): Record<string, DatabaseSpec> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`Invalid connections (from ${source}): expected an object of name → database, got ${describeValue(raw)}`);
  }
  const out: Record<string, DatabaseSpec> = {};
  for (const [name, db] of Object.entries(raw)) {
    out[name] = parseDatabase(db as DatabaseSetting, baseDir, `connections.${name} (from ${source})`);
  }
  return out;
}

function parseEnv(env: NodeJS.ProcessEnv, cwd: string): Partial<Settings> {
  const out: Partial<Settings> = {};
  for (const [variable, key] of Object.entries(ENV_NAMES)) {
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    if (key === 'database') {
      out.database = parseDatabase(raw, cwd, variable);
    } else if (key === 'listenUrl') {
      out.listenUrl = parseListenUrl(raw, cwd, variable);
    } else {
      (out as Record<string, unknown>)[key] = parseWithSpec(key as SettingName, raw, variable, true);
      if (key === 'taskFiles') out.taskFilesBase = cwd;
    }
  }
  return out;
}

/** A PostgreSQL URL (the only database that listens). */
function parseListenUrl(raw: unknown, baseDir: string, label: string): DatabaseSpec {
  const expected = 'a postgres:// or postgresql:// URL of a direct connection (no pooler in transaction mode) to the database';
  if (typeof raw !== 'string') throw new ConfigError(`Invalid ${label}: ${describeValue(raw)} — expected ${expected}`);
  const spec = parseDatabase(raw, baseDir, label);
  if (spec.dialect !== 'postgres') throw new ConfigError(`Invalid ${label}: ${spec.display} — expected ${expected}`);
  return spec;
}

/** Settings as the CLI and docs show them: passwords masked, knex instances described. */
export function describeSettings(s: Settings): Record<string, unknown> {
  const { database, connections, listenUrl, ...rest } = s;
  return {
    ...rest,
    listenUrl: listenUrl?.display ?? null,
    database: database.display,
    connections: Object.fromEntries(Object.entries(connections).map(([k, v]) => [k, v.display])),
  };
}

export type { Knex };

/**
 * Logging: human-readable lines by default, JSON lines with format `json`. Fields use the glossary
 * words (task id, name, queue, attempt, duration, outcome, worker id).
 */
import { maskUrlsIn } from './redact.js';
import { processWide } from './global.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  /** Whether lines of this level are written (lets hot paths skip building fields). */
  enabled?(level: Level): boolean;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level?: Level;
  format?: 'human' | 'json';
  /** Where lines go; default: standard error. */
  write?: (line: string) => void;
  /** Fields added to every line (e.g. the worker id). */
  base?: Record<string, unknown>;
}

function human(level: Level, msg: string, fields: Record<string, unknown>): string {
  const time = new Date().toISOString();
  const extra = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ` ${extra}` : ''}`;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const format = options.format ?? 'human';
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const base = options.base ?? {};
  const log = (level: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[level] < min) return;
    const all = { ...base, ...fields };
    const line = format === 'json' ? JSON.stringify({ level, time: new Date().toISOString(), msg, ...all }) : human(level, msg, all);
    // Warnings and errors quote driver messages; a URL in one must not show its password.
    write(level === 'warn' || level === 'error' ? maskUrlsIn(line) : line);
  };
  return { enabled: (level) => ORDER[level] >= min, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

const state = processWide('logger', () => ({ logger: createLogger() }));

/** The process-wide logger used where no worker-specific one is given. */
export function getLogger(): Logger {
  return state.logger;
}

export function setLogger(logger: Logger): void {
  state.logger = logger;
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger that adds `fields` to every line (e.g. a task's id and name). */
export function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  return {
    enabled: (level) => logger.enabled?.(level) ?? true,
    debug: (m, f) => logger.debug(m, { ...fields, ...f }),
    info: (m, f) => logger.info(m, { ...fields, ...f }),
    warn: (m, f) => logger.warn(m, { ...fields, ...f }),
    error: (m, f) => logger.error(m, { ...fields, ...f }),
  };
}

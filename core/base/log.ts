/**
 * Logging: human-readable lines by default, JSON lines with format `json`. Fields use the glossary
 * words (task id, name, queue, attempt, duration, outcome, worker id).
 *
 * A worker logs a line per task, so a line must cost little: the time stamp is formatted once per
 * millisecond, fields are appended in one pass, and `LineBuffer` lets a sink gather the lines of
 * one turn of the event loop into one write.
 */
import { maskUrlsIn } from './redact.js';
import { processWide } from './global.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** The human format's level column, padded once rather than per line. */
const LABEL: Record<Level, string> = { debug: 'DEBUG', info: 'INFO ', warn: 'WARN ', error: 'ERROR' };

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
  /** Where lines go, one call per line without its newline; default: standard error. */
  write?: (line: string) => void;
  /** Fields added to every line (e.g. the worker id). */
  base?: Record<string, unknown>;
}

let isoAt = Number.NaN;
let iso = '';

/** The current time in ISO 8601; a settle batch logs hundreds of lines within one millisecond. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoAt) {
    isoAt = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

/** One `key=value` of the human format ('' for a value left out): as JSON unless a plain word. */
function pair(k: string, v: unknown): string {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v === 'string') return ` ${k}=${/\s/.test(v) ? JSON.stringify(v) : v}`;
  if (typeof v === 'number') return ` ${k}=${Number.isFinite(v) ? String(v) : 'null'}`;
  if (typeof v === 'boolean') return ` ${k}=${v ? 'true' : 'false'}`;
  return ` ${k}=${JSON.stringify(v)}`;
}

/** `base` then `fields`, as `{ ...base, ...fields }` orders them, without building that object. */
function humanFields(base: Record<string, unknown>, baseKeys: readonly string[], fields: Record<string, unknown>): string {
  let out = '';
  for (const k of baseKeys) out += pair(k, Object.hasOwn(fields, k) ? fields[k] : base[k]);
  for (const k in fields) if (baseKeys.length === 0 || !Object.hasOwn(base, k)) out += pair(k, fields[k]);
  return out;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const json = (options.format ?? 'human') === 'json';
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const base = options.base ?? {};
  const baseKeys = Object.keys(base);
  const NONE: Record<string, unknown> = {};
  const log = (level: Level) => (msg: string, fields: Record<string, unknown> = NONE) => {
    if (ORDER[level] < min) return;
    const line = json
      ? JSON.stringify({ level, time: isoNow(), msg, ...base, ...fields })
      : `${isoNow()} ${LABEL[level]} ${msg}${humanFields(base, baseKeys, fields)}`;
    // Warnings and errors quote driver messages; a URL in one must not show its password.
    write(level === 'warn' || level === 'error' ? maskUrlsIn(line) : line);
  };
  return { enabled: (level) => ORDER[level] >= min, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/**
 * Gathers lines and hands them to `sink` together: at the end of the current turn of the event
 * loop, or at once when `maxChars` are waiting. Standard output to a file or a pipe is written
 * synchronously on Linux, one system call per write: a worker at concurrency 16 settling a batch
 * of 1,000 results made 1,000 of them. The owner calls `flush()` before it exits or writes
 * elsewhere (a message on stderr must not overtake the log lines before it).
 */
export class LineBuffer {
  private text = '';
  private scheduled = false;

  constructor(
    private readonly sink: (chunk: string) => void,
    private readonly maxChars = 64 * 1024,
  ) {}

  readonly line = (line: string): void => {
    this.text += `${line}\n`;
    if (this.text.length >= this.maxChars) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  };

  /** Writes what is waiting now. */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.text === '') return;
    const chunk = this.text;
    this.text = '';
    this.sink(chunk);
  };
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

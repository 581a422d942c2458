/**
 * The `database` setting: a URL, a knex config object, or the application's own knex instance.
 * Parsed into a DatabaseSpec that knows its dialect family and a display form with the password
 * masked (the only form that may reach a message or a log).
 */
import path from 'node:path';
import type { Knex } from 'knex';
import { maskUrl } from '../base/redact.js';
import { ConfigError } from '../errors.js';

export type DialectName = 'sqlite' | 'mysql' | 'postgres';
export type DatabaseSetting = string | Knex.Config | Knex;

export interface DatabaseSpec {
  dialect: DialectName;
  /** A knex config to open, or null when `knex` is the application's own instance. */
  config: Knex.Config | null;
  knex: Knex | null;
  /** Safe to print: passwords masked. */
  display: string;
  /** Identifies the database for connection caching. */
  key: string;
}

const CLIENTS: Record<string, DialectName> = {
  sqlite3: 'sqlite',
  'better-sqlite3': 'sqlite',
  mysql: 'mysql',
  mysql2: 'mysql',
  pg: 'postgres',
  postgres: 'postgres',
  postgresql: 'postgres',
};

const EXPECTED =
  'a URL (sqlite:path/to/file.sqlite3, mysql://user:pass@host/db, mariadb://…, postgres://…, postgresql://…), a knex config object, or a knex instance';

let instanceCounter = 0;
const instanceKeys = new WeakMap<object, string>();

export function isKnexInstance(v: unknown): v is Knex {
  return typeof v === 'function' && typeof (v as Knex).raw === 'function' && typeof (v as Knex).client === 'object';
}

/** Parses a `database` value. `baseDir` anchors relative SQLite paths; `label` names the source. */
export function parseDatabase(value: DatabaseSetting, baseDir: string, label: string): DatabaseSpec {
  if (typeof value === 'string') return parseUrl(value, baseDir, label);
  if (isKnexInstance(value)) {
    const clientName = String((value.client as { config?: Knex.Config }).config?.client ?? (value.client as { dialect?: string }).dialect ?? '');
    const dialect = CLIENTS[clientName] ?? dialectOfClientObject(value);
    if (!dialect) throw new ConfigError(`Invalid ${label}: a knex instance for client "${clientName}" — expected sqlite3, better-sqlite3, mysql2, mysql or pg`);
    let key = instanceKeys.get(value);
    if (!key) {
      key = `knex#${++instanceCounter}`;
      instanceKeys.set(value, key);
    }
    return { dialect, config: null, knex: value, display: `the application's knex instance (${clientName || dialect})`, key };
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const client = typeof value.client === 'string' ? value.client : '';
    const dialect = CLIENTS[client];
    if (!dialect) {
      throw new ConfigError(`Invalid ${label}: knex config with client ${JSON.stringify(value.client ?? null)} — expected client sqlite3, better-sqlite3, mysql2, mysql or pg`);
    }
    const config = { ...value };
    if (dialect === 'sqlite') {
      const conn = config.connection as { filename?: string } | undefined;
      if (conn && typeof conn === 'object' && typeof conn.filename === 'string' && conn.filename !== ':memory:') {
        config.connection = { ...conn, filename: path.resolve(baseDir, conn.filename) };
      }
    }
    const display = describeConfig(config, dialect);
    return { dialect, config, knex: null, display, key: `config:${display}` };
  }
  throw new ConfigError(`Invalid ${label}: ${typeof value} — expected ${EXPECTED}`);
}

function dialectOfClientObject(k: Knex): DialectName | undefined {
  const d = (k.client as { dialect?: string }).dialect;
  if (d === 'sqlite3' || d === 'better-sqlite3') return 'sqlite';
  if (d === 'mysql' || d === 'mysql2') return 'mysql';
  if (d === 'postgresql' || d === 'pg') return 'postgres';
  return undefined;
}

function describeConfig(config: Knex.Config, dialect: DialectName): string {
  const c = config.connection as Record<string, unknown> | string | undefined;
  if (typeof c === 'string') return maskUrl(c);
  if (c && typeof c === 'object') {
    if (dialect === 'sqlite') return `sqlite:${String(c.filename)}`;
    if (typeof c.connectionString === 'string') return maskUrl(c.connectionString);
    const user = c.user ? `${String(c.user)}${c.password ? ':***' : ''}@` : '';
    return `${dialect}://${user}${String(c.host ?? 'localhost')}${c.port ? `:${String(c.port)}` : ''}/${String(c.database ?? '')}`;
  }
  return `${dialect} (${String(config.client)})`;
}

function parseUrl(raw: string, baseDir: string, label: string): DatabaseSpec {
  const value = raw.trim();
  const display = maskUrl(value);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    let file = value.slice('sqlite:'.length);
    if (file.startsWith('//')) file = file.slice(2);
    if (file === '') throw new ConfigError(`Invalid ${label}: ${JSON.stringify(display)} — expected a file path after "sqlite:", e.g. sqlite:bgtasks.sqlite3`);
    const filename = file === ':memory:' ? file : path.resolve(baseDir, file);
    return {
      dialect: 'sqlite',
      config: { client: 'sqlite3', connection: { filename }, useNullAsDefault: true },
      knex: null,
      display: `sqlite:${filename}`,
      key: `sqlite:${filename}`,
    };
  }
  if (scheme === 'mysql' || scheme === 'mariadb' || scheme === 'postgres' || scheme === 'postgresql') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ConfigError(`Invalid ${label}: ${JSON.stringify(display)} is not a valid URL — expected ${scheme}://user:password@host:port/database`);
    }
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (!url.hostname || !database) {
      throw new ConfigError(`Invalid ${label}: ${JSON.stringify(display)} — expected ${scheme}://user:password@host:port/database (host and database are required)`);
    }
    if (scheme === 'mysql' || scheme === 'mariadb') {
      const connection: Record<string, unknown> = {
        host: url.hostname,
        port: url.port ? Number(url.port) : 3306,
        user: decodeURIComponent(url.username || 'root'),
        password: decodeURIComponent(url.password),
        database,
        charset: 'utf8mb4',
      };
      return { dialect: 'mysql', config: { client: 'mysql2', connection }, knex: null, display, key: value };
    }
    return { dialect: 'postgres', config: { client: 'pg', connection: { connectionString: value } }, knex: null, display, key: value };
  }
  throw new ConfigError(`Invalid ${label}: ${JSON.stringify(display)} — expected ${EXPECTED}`);
}

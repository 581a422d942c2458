/**
 * core/config/settings.ts and core/config/settings-spec.ts: defaults, precedence (CLI > configure() > env > config
 * file > defaults), config-file discovery, relative SQLite paths, and the ConfigError messages.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knex, { type Knex } from 'knex';
import {
  configure,
  describeSettings,
  findConfigFile,
  getSettings,
  resetConfiguration,
  resolveSettings,
  type SettingsInput,
} from '../../core/config/settings.js';
import { ConfigError } from '../../core/errors.js';

let root: string;
let counter = 0;

/** A fresh directory under the test's temporary root, with `files` written into it. */
function dir(files: Record<string, string> = {}): string {
  const d = path.join(root, `d${++counter}`);
  mkdirSync(d, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(d, name)), { recursive: true });
    writeFileSync(path.join(d, name), text);
  }
  return d;
}

async function configErrorOf(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function configureErrorOf(input: SettingsInput): ConfigError {
  try {
    configure(input);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected configure() to throw a ConfigError');
}

describe('settings', () => {
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-config-test-'));
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });
  afterEach(() => resetConfiguration());

  describe('defaults', () => {
    it('applies every default when no source sets anything', async () => {
      const cwd = dir();
      const s = await resolveSettings({ cwd, env: {} });
      expect(s.configFile).to.equal(null);
      expect(s.database.dialect).to.equal('sqlite');
      expect(s.database.display).to.equal(`sqlite:${path.join(cwd, 'bgtasks.sqlite3')}`);
      expect(s).to.deep.include({
        connections: {},
        tablePrefix: 'bgtasks_',
        maxAttempts: 25,
        maxRunTime: 3600,
        priorityOrdering: 'DESC',
        concurrency: 1,
        prefetch: 'auto',
        taskFiles: ['**/tasks.{ts,mts,js,mjs}'],
        taskFilesBase: cwd,
        lockTimeout: 60,
        heartbeatInterval: 10,
        sleep: 5,
        timezone: 'UTC',
        maxArgsBytes: 1024 * 1024,
        mode: 'normal',
        maxQueueSize: {},
        errorsKept: 10,
        cronGrace: 300,
        listenUrl: null,
        livenessTimeout: 12,
      });
    });
  });

  describe('listenUrl', () => {
    it('reads BGTASKS_LISTEN_URL and configure({ listenUrl }) as a PostgreSQL URL, shown without its password', async () => {
      const fromEnv = await resolveSettings({ cwd: dir(), env: { BGTASKS_LISTEN_URL: 'postgres://app:hunter2@db.example:5432/jobs' } });
      expect(fromEnv.listenUrl).to.include({ dialect: 'postgres', display: 'postgres://app:***@db.example:5432/jobs' });
      expect(describeSettings(fromEnv).listenUrl).to.equal('postgres://app:***@db.example:5432/jobs');
      expect(JSON.stringify(describeSettings(fromEnv))).to.not.contain('hunter2');
      configure({ listenUrl: 'postgresql://direct.example/jobs' });
      expect((await resolveSettings({ cwd: dir(), env: {} })).listenUrl!.display).to.equal('postgresql://direct.example/jobs');
      configure({ listenUrl: null });
      expect((await resolveSettings({ cwd: dir(), env: {} })).listenUrl).to.equal(null);
    });

    it('rejects a listenUrl that is not a PostgreSQL URL, naming where it came from and what is expected', async () => {
      const err = await configErrorOf(resolveSettings({ cwd: dir(), env: { BGTASKS_LISTEN_URL: 'mysql://app:s3cret@db.example/jobs' } }));
      expect(err.message).to.equal(
        'Invalid BGTASKS_LISTEN_URL: mysql://app:***@db.example/jobs — expected a postgres:// or postgresql:// URL of a direct connection (no pooler in transaction mode) to the database',
      );
      expect(() => configure({ listenUrl: 42 as unknown as string })).to.throw(ConfigError, /^Invalid listenUrl \(from configure\(\)\): 42 — expected a postgres:\/\//);
    });
  });

  describe('precedence', () => {
    it('takes CLI overrides, then configure(), then BGTASKS_* variables, then the config file, then defaults', async () => {
      const cwd = dir({
        'bgtasks.config.json': JSON.stringify({ maxAttempts: 2, sleep: 2, concurrency: 2, prefetch: 2, errorsKept: 2 }),
      });
      configure({ concurrency: 4, prefetch: 4 });
      const s = await resolveSettings({
        cwd,
        env: { BGTASKS_SLEEP: '3', BGTASKS_CONCURRENCY: '3', BGTASKS_PREFETCH: '3', BGTASKS_ERRORS_KEPT: '' },
        overrides: { prefetch: 5 },
      });
      expect(s).to.deep.include({ maxAttempts: 2, errorsKept: 2, sleep: 3, concurrency: 4, prefetch: 5, maxRunTime: 3600 });
    });

    it('forgets configure() after resetConfiguration()', async () => {
      configure({ maxAttempts: 7 });
      expect((await resolveSettings({ cwd: dir(), env: {} })).maxAttempts).to.equal(7);
      resetConfiguration();
      expect((await resolveSettings({ cwd: dir(), env: {} })).maxAttempts).to.equal(25);
    });

    it('lets a later configure() call add to and override an earlier one', async () => {
      configure({ maxAttempts: 7, sleep: 2 });
      configure({ sleep: 3 });
      expect(await resolveSettings({ cwd: dir(), env: {} })).to.deep.include({ maxAttempts: 7, sleep: 3 });
    });

    it('drops cached settings when configure() is called', async () => {
      const cwd = dir();
      const first = await getSettings({ cwd });
      configure({ maxAttempts: first.maxAttempts + 1 });
      expect((await getSettings({ cwd })).maxAttempts).to.equal(first.maxAttempts + 1);
    });

    it('uses a knex instance given to configure()', async () => {
      const instance: Knex = knex({ client: 'sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
      try {
        configure({ database: instance });
        const s = await resolveSettings({ cwd: dir(), env: {} });
        expect(s.database.knex).to.equal(instance);
        expect(s.database.dialect).to.equal('sqlite');
      } finally {
        await instance.destroy();
      }
    });
  });

  describe('config file discovery', () => {
    it('finds bgtasks.config.json in a parent directory', async () => {
      const top = dir({ 'bgtasks.config.json': JSON.stringify({ maxAttempts: 3 }) });
      const cwd = path.join(top, 'a', 'b');
      mkdirSync(cwd, { recursive: true });
      expect(findConfigFile(cwd)).to.equal(path.join(top, 'bgtasks.config.json'));
      const s = await resolveSettings({ cwd, env: {} });
      expect(s.configFile).to.equal(path.join(top, 'bgtasks.config.json'));
      expect(s.maxAttempts).to.equal(3);
    });

    it('takes the nearest file over one further up', async () => {
      const top = dir({
        'bgtasks.config.json': JSON.stringify({ maxAttempts: 3 }),
        'app/bgtasks.config.json': JSON.stringify({ maxAttempts: 4 }),
      });
      const cwd = path.join(top, 'app', 'src');
      mkdirSync(cwd, { recursive: true });
      const s = await resolveSettings({ cwd, env: {} });
      expect(s.configFile).to.equal(path.join(top, 'app', 'bgtasks.config.json'));
      expect(s.maxAttempts).to.equal(4);
    });

    it('loads bgtasks.config.mjs (its default export)', async () => {
      const cwd = dir({ 'bgtasks.config.mjs': 'export default { maxAttempts: 5, timezone: "Europe/Berlin" };\n' });
      const s = await resolveSettings({ cwd, env: {} });
      expect(s.configFile).to.equal(path.join(cwd, 'bgtasks.config.mjs'));
      expect(s).to.deep.include({ maxAttempts: 5, timezone: 'Europe/Berlin' });
    });

    it('loads bgtasks.config.ts through tsx', async () => {
      const cwd = dir({
        'bgtasks.config.ts': 'interface Conf { maxAttempts: number; mode: "dummy" }\nconst conf: Conf = { maxAttempts: 6, mode: "dummy" };\nexport default conf;\n',
      });
      const s = await resolveSettings({ cwd, env: {} });
      expect(s.configFile).to.equal(path.join(cwd, 'bgtasks.config.ts'));
      expect(s).to.deep.include({ maxAttempts: 6, mode: 'dummy' });
    });

    it('prefers bgtasks.config.ts over bgtasks.config.json in the same directory', async () => {
      const cwd = dir({
        'bgtasks.config.ts': 'export default { maxAttempts: 8 };\n',
        'bgtasks.config.json': JSON.stringify({ maxAttempts: 9 }),
      });
      expect((await resolveSettings({ cwd, env: {} })).maxAttempts).to.equal(8);
    });

    it('reports a config file that cannot be parsed', async () => {
      const cwd = dir({ 'bgtasks.config.json': '{ "maxAttempts": 3,' });
      const err = await configErrorOf(resolveSettings({ cwd, env: {} }));
      expect(err.message).to.contain(`Cannot load config file ${path.join(cwd, 'bgtasks.config.json')}`);
    });

    it('reports a config file that is not an object of settings', async () => {
      const cwd = dir({ 'bgtasks.config.json': '[1, 2]' });
      const err = await configErrorOf(resolveSettings({ cwd, env: {} }));
      expect(err.message).to.contain('expected it to export (default) an object of settings');
    });

    it('rejects an unknown setting in a config file, naming it and the file', async () => {
      const cwd = dir({ 'bgtasks.config.json': JSON.stringify({ maxAttemps: 3 }) });
      const err = await configErrorOf(resolveSettings({ cwd, env: {} }));
      expect(err.message).to.match(/^Unknown setting "maxAttemps" \(from config file .*bgtasks\.config\.json\) — did you mean maxAttempts\? expected one of: database, connections, /);
    });

    it('rejects a bad value in a config file, naming the setting, the file, the value and what is allowed', async () => {
      const cwd = dir({ 'bgtasks.config.json': JSON.stringify({ sleep: -1 }) });
      const err = await configErrorOf(resolveSettings({ cwd, env: {} }));
      expect(err.message).to.equal(
        `Invalid sleep (from config file ${path.join(cwd, 'bgtasks.config.json')}): -1 — expected a finite number > 0`,
      );
    });
  });

  describe('relative paths', () => {
    it('resolves a relative SQLite path in a config file against the file, not the working directory', async () => {
      const top = dir({ 'bgtasks.config.json': JSON.stringify({ database: 'sqlite:data/app.sqlite3' }) });
      const cwd = path.join(top, 'sub');
      mkdirSync(cwd);
      const s = await resolveSettings({ cwd, env: {} });
      expect(s.database.display).to.equal(`sqlite:${path.join(top, 'data', 'app.sqlite3')}`);
      expect((s.database.config!.connection as { filename: string }).filename).to.equal(path.join(top, 'data', 'app.sqlite3'));
    });

    it('resolves relative SQLite paths of config-file connections and knex configs against the file', async () => {
      const top = dir({
        'bgtasks.config.json': JSON.stringify({
          database: { client: 'sqlite3', connection: { filename: 'main.db' }, useNullAsDefault: true },
          connections: { reports: 'sqlite:reports.db' },
        }),
      });
      const cwd = path.join(top, 'deep', 'er');
      mkdirSync(cwd, { recursive: true });
      const s = await resolveSettings({ cwd, env: {} });
      expect((s.database.config!.connection as { filename: string }).filename).to.equal(path.join(top, 'main.db'));
      expect(s.connections.reports!.display).to.equal(`sqlite:${path.join(top, 'reports.db')}`);
    });

    it('resolves a relative SQLite path in BGTASKS_DATABASE_URL against the working directory', async () => {
      const top = dir({ 'bgtasks.config.json': JSON.stringify({ database: 'sqlite:file.db' }) });
      const cwd = path.join(top, 'sub');
      mkdirSync(cwd);
      const s = await resolveSettings({ cwd, env: { BGTASKS_DATABASE_URL: 'sqlite:env.db' } });
      expect(s.database.display).to.equal(`sqlite:${path.join(cwd, 'env.db')}`);
    });

    it('takes task-file globs relative to the config file that set them, or to the working directory', async () => {
      const top = dir({ 'bgtasks.config.json': JSON.stringify({ taskFiles: 'jobs/*.ts' }) });
      const cwd = path.join(top, 'sub');
      mkdirSync(cwd);
      const fromFile = await resolveSettings({ cwd, env: {} });
      expect(fromFile.taskFiles).to.deep.equal(['jobs/*.ts']);
      expect(fromFile.taskFilesBase).to.equal(top);
      const fromEnv = await resolveSettings({ cwd, env: { BGTASKS_TASK_FILES: 'a/*.ts, b/*.ts' } });
      expect(fromEnv.taskFiles).to.deep.equal(['a/*.ts', 'b/*.ts']);
      expect(fromEnv.taskFilesBase).to.equal(cwd);
    });
  });

  describe('environment variables', () => {
    it('reads every BGTASKS_* variable, converting numbers from strings', async () => {
      const s = await resolveSettings({
        cwd: dir(),
        env: {
          BGTASKS_TABLE_PREFIX: 'jobs_',
          BGTASKS_MAX_ATTEMPTS: ' 7 ',
          BGTASKS_MAX_RUN_TIME: '90.5',
          BGTASKS_PRIORITY_ORDERING: 'ASC',
          BGTASKS_CONCURRENCY: '4',
          BGTASKS_PREFETCH: '2',
          BGTASKS_LOCK_TIMEOUT: '30',
          BGTASKS_HEARTBEAT_INTERVAL: '2.5',
          BGTASKS_SLEEP: '0.5',
          BGTASKS_TIMEZONE: 'Pacific/Chatham',
          BGTASKS_MAX_ARGS_BYTES: '2048',
          BGTASKS_MODE: 'immediate',
          BGTASKS_ERRORS_KEPT: '3',
          BGTASKS_LIVENESS_TIMEOUT: '20',
        },
      });
      expect(s).to.deep.include({
        tablePrefix: 'jobs_',
        maxAttempts: 7,
        maxRunTime: 90.5,
        priorityOrdering: 'ASC',
        concurrency: 4,
        prefetch: 2,
        lockTimeout: 30,
        heartbeatInterval: 2.5,
        sleep: 0.5,
        timezone: 'Pacific/Chatham',
        maxArgsBytes: 2048,
        mode: 'immediate',
        errorsKept: 3,
        livenessTimeout: 20,
      });
    });

    it('takes livenessTimeout 0 (no liveness beat) or at least 9 s, and refuses the rest naming the variable', async () => {
      expect((await resolveSettings({ cwd: dir(), env: { BGTASKS_LIVENESS_TIMEOUT: '0' } })).livenessTimeout).to.equal(0);
      expect((await resolveSettings({ cwd: dir(), env: { BGTASKS_LIVENESS_TIMEOUT: '9' } })).livenessTimeout).to.equal(9);
      for (const bad of ['5', '-1', 'soon']) {
        const err = await configErrorOf(resolveSettings({ cwd: dir(), env: { BGTASKS_LIVENESS_TIMEOUT: bad } }));
        expect(err.message).to.equal(`Invalid livenessTimeout (from BGTASKS_LIVENESS_TIMEOUT): ${JSON.stringify(bad)} — expected 0 (off), or a finite number >= 9 and <= 2147483`);
      }
    });

    it('ignores BGTASKS_ variables it does not know, and empty known ones', async () => {
      const s = await resolveSettings({
        cwd: dir(),
        env: { BGTASKS_NOT_A_SETTING: 'x', BGTASKS_MAX_ATTEMPT: 'not a number', BGTASKS_MAX_ATTEMPTS: '' },
      });
      expect(s.maxAttempts).to.equal(25);
    });

    const bad: Array<[string, string, string]> = [
      ['BGTASKS_MAX_ATTEMPTS', 'abc', 'Invalid maxAttempts (from BGTASKS_MAX_ATTEMPTS): "abc" — expected an integer >= 1'],
      ['BGTASKS_MAX_ATTEMPTS', '2.5', 'Invalid maxAttempts (from BGTASKS_MAX_ATTEMPTS): "2.5" — expected an integer >= 1'],
      ['BGTASKS_SLEEP', '0', 'Invalid sleep (from BGTASKS_SLEEP): "0" — expected a finite number > 0'],
      ['BGTASKS_CONCURRENCY', '1001', 'Invalid concurrency (from BGTASKS_CONCURRENCY): "1001" — expected an integer >= 1 and <= 1000'],
      ['BGTASKS_CONCURRENCY', '0x4', 'Invalid concurrency (from BGTASKS_CONCURRENCY): "0x4" — expected an integer >= 1 and <= 1000'],
      ['BGTASKS_SLEEP', '0b1', 'Invalid sleep (from BGTASKS_SLEEP): "0b1" — expected a finite number > 0'],
      ['BGTASKS_MODE', 'fast', 'Invalid mode (from BGTASKS_MODE): "fast" — expected one of "normal", "immediate", "dummy"'],
      ['BGTASKS_PRIORITY_ORDERING', 'up', 'Invalid priorityOrdering (from BGTASKS_PRIORITY_ORDERING): "up" — expected one of "DESC", "ASC"'],
      ['BGTASKS_TIMEZONE', 'Mars/Olympus', 'Invalid timezone (from BGTASKS_TIMEZONE): "Mars/Olympus" — expected an IANA time zone name such as "UTC" or "Europe/Berlin"'],
      ['BGTASKS_TABLE_PREFIX', 'my-prefix', 'Invalid tablePrefix (from BGTASKS_TABLE_PREFIX): "my-prefix" — expected letters, digits and underscores, starting with a letter or underscore, at most 30 characters'],
      ['BGTASKS_TASK_FILES', 'a.ts,,b.ts', 'Invalid taskFiles (from BGTASKS_TASK_FILES): "a.ts,,b.ts" — expected a glob or a list of globs (comma-separated in the environment)'],
    ];
    for (const [variable, value, message] of bad) {
      it(`rejects ${variable}=${value}, naming the variable, the value and what is allowed`, async () => {
        const err = await configErrorOf(resolveSettings({ cwd: dir(), env: { [variable]: value } }));
        expect(err.message).to.equal(message);
      });
    }

    it('rejects a BGTASKS_DATABASE_URL it cannot use, naming the variable, without its password', async () => {
      const err = await configErrorOf(resolveSettings({ cwd: dir(), env: { BGTASKS_DATABASE_URL: 'oracle://scott:hunter2@db.example/orcl' } }));
      expect(err.message).to.match(/^Invalid BGTASKS_DATABASE_URL: "oracle:\/\/scott:\*\*\*@db\.example\/orcl" — expected a URL/);
      expect(err.message).to.not.contain('hunter2');
    });
  });

  describe('validation', () => {
    it('validates configure() input at once, naming the setting, configure(), the value and what is allowed', () => {
      expect(configureErrorOf({ maxAttempts: 0 }).message).to.equal('Invalid maxAttempts (from configure()): 0 — expected an integer >= 1');
    });

    it('does not keep settings from a configure() call that failed', async () => {
      configureErrorOf({ maxAttempts: 0 });
      expect((await resolveSettings({ cwd: dir(), env: {} })).maxAttempts).to.equal(25);
    });

    it('rejects unknown settings in configure()', () => {
      expect(configureErrorOf({ maxAttemps: 3 } as SettingsInput).message).to.match(/^Unknown setting "maxAttemps" \(from configure\(\)\)/);
    });

    it('does not convert strings outside the environment', () => {
      expect(configureErrorOf({ maxAttempts: '5' } as unknown as SettingsInput).message).to.equal(
        'Invalid maxAttempts (from configure()): "5" — expected an integer >= 1',
      );
    });

    it('rejects a configure() argument that is not an object', () => {
      expect(configureErrorOf(null as unknown as SettingsInput).message).to.match(/^Invalid settings from configure\(\): expected an object/);
    });

    const table: Array<{ key: keyof SettingsInput; good: unknown[]; bad: unknown[] }> = [
      { key: 'tablePrefix', good: ['', 'bg_', '_x', 'a'.repeat(30)], bad: ['1abc', 'a-b', 'a'.repeat(31), 5] },
      { key: 'maxAttempts', good: [1, 100], bad: [0, 1.5, -1, Infinity] },
      { key: 'maxRunTime', good: [0.5, 10], bad: [0, -1, NaN] },
      { key: 'priorityOrdering', good: ['ASC', 'DESC'], bad: ['asc', ''] },
      { key: 'concurrency', good: [1, 1000], bad: [0, 1001, 2.5] },
      { key: 'prefetch', good: [0, 10000], bad: [-1, 10001] },
      { key: 'taskFiles', good: ['tasks.ts', ['a/*.ts', 'b/*.ts']], bad: [[], '', ['a.ts', ''], 5] },
      { key: 'lockTimeout', good: [11, 60.5], bad: [0.5, 0, -1] },
      { key: 'heartbeatInterval', good: [0.1, 9], bad: [0, -1] },
      { key: 'sleep', good: [0.01, 60], bad: [0, -0.5, Infinity] },
      { key: 'timezone', good: ['UTC', 'Pacific/Chatham'], bad: ['Nowhere/City', ''] },
      { key: 'maxArgsBytes', good: [2, 1024], bad: [1, 1.5] },
      { key: 'mode', good: ['normal', 'immediate', 'dummy'], bad: ['fast'] },
      { key: 'maxQueueSize', good: [{}, { mail: 10 }], bad: [{ mail: 0 }, { mail: 1.5 }, [], 10] },
      { key: 'errorsKept', good: [1, 1000], bad: [0, 1001] },
      { key: 'livenessTimeout', good: [0, 9, 12.5], bad: [8.9, -1, 1, NaN] },
    ];
    for (const { key, good, bad } of table) {
      it(`validates ${key} from the command line`, async () => {
        for (const v of good) {
          const s = await resolveSettings({ cwd: dir(), env: {}, overrides: { [key]: v } as SettingsInput });
          expect((s as unknown as Record<string, unknown>)[key], `${key} = ${JSON.stringify(v)}`).to.deep.equal(key === 'taskFiles' && typeof v === 'string' ? [v] : v);
        }
        for (const v of bad) {
          const err = await configErrorOf(resolveSettings({ cwd: dir(), env: {}, overrides: { [key]: v } as SettingsInput }));
          expect(err.message).to.match(new RegExp(`^Invalid ${key} \\(from command line\\): .* — expected `));
        }
      });
    }

    it('rejects heartbeatInterval >= lockTimeout, whatever the sources', async () => {
      let err = await configErrorOf(resolveSettings({ cwd: dir(), env: {}, overrides: { lockTimeout: 30, heartbeatInterval: 30 } }));
      expect(err.message).to.match(/^Invalid heartbeatInterval: 30 — expected fewer seconds than lockTimeout \(30\)/);
      err = await configErrorOf(resolveSettings({ cwd: dir(), env: { BGTASKS_LOCK_TIMEOUT: '5' } }));
      expect(err.message).to.match(/^Invalid heartbeatInterval: 10 — expected fewer seconds than lockTimeout \(5\)/);
      const ok = await resolveSettings({ cwd: dir(), env: {}, overrides: { lockTimeout: 30, heartbeatInterval: 29.9 } });
      expect(ok.heartbeatInterval).to.equal(29.9);
    });

    it('configure() refuses heartbeatInterval >= lockTimeout at once when it has set both, and stores neither', async () => {
      try {
        expect(() => configure({ heartbeatInterval: 100, lockTimeout: 60 })).to.throw(ConfigError, /^Invalid heartbeatInterval \(from configure\(\)\): 100 — expected fewer seconds than lockTimeout \(60\)/);
        configure({ lockTimeout: 20 });
        expect(() => configure({ heartbeatInterval: 20 })).to.throw(ConfigError, /lockTimeout \(20\)/);
        configure({ heartbeatInterval: 5 });
        expect(await resolveSettings({ cwd: dir(), env: {} })).to.include({ lockTimeout: 20, heartbeatInterval: 5 });
        expect(() => configure({ lockTimeout: 5 })).to.throw(ConfigError, /^Invalid lockTimeout \(from configure\(\)\): 5 — expected more seconds than heartbeatInterval \(5\)/);
      } finally {
        resetConfiguration();
      }
    });
  });

  describe('passwords', () => {
    it('never shows the database password in the settings display', async () => {
      const s = await resolveSettings({
        cwd: dir(),
        env: {},
        overrides: { database: 'postgres://app:hunter2@db.example:5432/jobs', connections: { other: 'mysql://app:s3cret@db2.example/jobs' } },
      });
      expect(s.database.display).to.equal('postgres://app:***@db.example:5432/jobs');
      const shown = JSON.stringify(describeSettings(s));
      expect(shown).to.not.contain('hunter2');
      expect(shown).to.not.contain('s3cret');
      expect(describeSettings(s).connections).to.deep.equal({ other: 'mysql://app:***@db2.example/jobs' });
    });

    it('never shows the password in an error about a bad database URL', async () => {
      const err = await configErrorOf(resolveSettings({ cwd: dir(), env: {}, overrides: { database: 'postgres://app:hunter2@db.example' } }));
      expect(err.message).to.contain('host and database are required');
      expect(err.message).to.not.contain('hunter2');
    });
  });
});

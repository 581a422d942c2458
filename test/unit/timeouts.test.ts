/**
 * The connectTimeout and statementTimeout settings (TIMEOUT-01): their defaults and sources, the
 * refusal of bad values naming the source, and the knex configs the dialects build from them. The
 * bounds themselves, on real servers through a black-holing proxy, are test/scenarios/timeouts.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { resolveSettings } from '../../core/config/settings.js';
import { ConfigError } from '../../core/errors.js';
import { mysqlDialect } from '../../core/store/dialects/mysql.js';
import { postgresDialect } from '../../core/store/dialects/postgres.js';
import { timeoutsOf } from '../../core/store/dialects/timeouts.js';
import { overridesFrom } from '../../cli/flags.js';

describe('connectTimeout and statementTimeout', () => {
  let cwd: string;
  before(() => (cwd = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-timeouts-unit-'))));
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it('default to 10 s and 30 s, and come from the environment, configure() input and flags, fractions allowed', async () => {
    const d = await resolveSettings({ cwd, env: {} });
    expect([d.connectTimeout, d.statementTimeout]).to.deep.equal([10, 30]);
    const env = await resolveSettings({ cwd, env: { BGTASKS_CONNECT_TIMEOUT: '2.5', BGTASKS_STATEMENT_TIMEOUT: '45' } });
    expect([env.connectTimeout, env.statementTimeout]).to.deep.equal([2.5, 45]);
    const flags = await resolveSettings({ cwd, env: { BGTASKS_CONNECT_TIMEOUT: '2.5' }, overrides: overridesFrom({ connectTimeout: '1', statementTimeout: '0.5' }) });
    expect([flags.connectTimeout, flags.statementTimeout]).to.deep.equal([1, 0.5]);
    expect(timeoutsOf(flags)).to.deep.equal({ connectMs: 1000, statementMs: 500 });
  });

  it('refuse zero, negative, non-numeric and too large values, naming the source and the value', async () => {
    const refused = async (p: Promise<unknown> | (() => unknown)) => {
      try {
        await (typeof p === 'function' ? p() : p);
      } catch (err) {
        expect(err).to.be.instanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(await refused(resolveSettings({ cwd, env: { BGTASKS_STATEMENT_TIMEOUT: '0' } }))).to.equal(
      'Invalid statementTimeout (from BGTASKS_STATEMENT_TIMEOUT): "0" — expected a finite number > 0 and <= 2147483',
    );
    expect(await refused(resolveSettings({ cwd, env: { BGTASKS_CONNECT_TIMEOUT: 'soon' } }))).to.match(/^Invalid connectTimeout \(from BGTASKS_CONNECT_TIMEOUT\): "soon"/);
    expect(await refused(resolveSettings({ cwd, env: {}, overrides: { connectTimeout: -1 } }))).to.match(/^Invalid connectTimeout \(from command line\): -1/);
    expect(await refused(() => overridesFrom({ statementTimeout: '9999999' }))).to.match(/^Invalid statementTimeout \(from --statement-timeout\): "9999999"/);
  });

  it('reach the drivers and the pool; a value the application set in its own knex config wins', () => {
    const t = { connectMs: 1500, statementMs: 4000 };
    const pg = postgresDialect.prepareConfig({ client: 'pg', connection: { connectionString: 'postgres://u@h/db' } }, t);
    expect(pg.connection).to.deep.equal({ connectionString: 'postgres://u@h/db', connectionTimeoutMillis: 1500 });
    expect(pg.acquireConnectionTimeout).to.equal(2000);
    const pgUrl = postgresDialect.prepareConfig({ client: 'pg', connection: 'postgres://u@h/db' }, t);
    expect(pgUrl.connection).to.deep.equal({ connectionString: 'postgres://u@h/db', connectionTimeoutMillis: 1500 });
    const my = mysqlDialect.prepareConfig({ client: 'mysql2', connection: { host: 'h', connectTimeout: 700 }, acquireConnectionTimeout: 900 }, t);
    expect(my.connection).to.deep.equal({ host: 'h', connectTimeout: 700 });
    expect(my.acquireConnectionTimeout).to.equal(900);
    const myUrl = mysqlDialect.prepareConfig({ client: 'mysql2', connection: 'mysql://u@h/db' }, t);
    expect(myUrl.connection).to.deep.equal({ uri: 'mysql://u@h/db', connectTimeout: 1500 });
  });
});

describe('the statement-timeout exemption of migrations', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-exempt-unit-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('leaves no promise hook on once migrate() returned (a worker in the same process runs at full speed)', function () {
    this.timeout(30_000);
    // In a fresh process: another test (or OpenTelemetry's context manager) may have turned hooks
    // on in this one. A promise reaction runs under async id 0 while no hook watches promises.
    const core = new URL('../../core/index.ts', import.meta.url).href;
    const script = `
      import { AsyncLocalStorage, executionAsyncId } from 'node:async_hooks';
      const { configure, migrate, closeConnections } = await import(${JSON.stringify(core)});
      const probe = () => new Promise((r) => setImmediate(() => Promise.resolve().then(() => r(executionAsyncId()))));
      configure({ database: ${JSON.stringify(`sqlite:${path.join(dir, 'exempt.sqlite3')}`)} });
      const before = await probe();
      const applied = (await migrate()).length;
      const afterMigrate = await probe();
      await closeConnections();
      // The probe sees a hook when one is on: an AsyncLocalStorage left running turns one on.
      await new AsyncLocalStorage().run(1, async () => {});
      console.log(JSON.stringify({ before, applied, afterMigrate, withHook: await probe() }));
    `;
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--conditions=bgtasks-source', '--input-type=module', '-e', script], { env, encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { before: number; applied: number; afterMigrate: number; withHook: number };
    expect(r.applied, 'migrations applied').to.be.above(0);
    expect([r.before, r.afterMigrate]).to.deep.equal([0, 0]);
    expect(r.withHook).to.not.equal(0);
  });
});

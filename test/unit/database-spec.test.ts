/**
 * core/config/database-spec.ts: the `database` setting as a URL, a knex config object or a knex
 * instance; relative SQLite paths; and passwords kept out of every display and message.
 */
import path from 'node:path';
import { expect } from 'chai';
import knex, { type Knex } from 'knex';
import { maskUrl } from '../../core/base/redact.js';
import { isKnexInstance, parseDatabase } from '../../core/config/database-spec.js';
import { ConfigError } from '../../core/errors.js';

const BASE = path.resolve('/srv/app');

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('maskUrl', () => {
  it('replaces the password of a URL with ***', () => {
    expect(maskUrl('postgres://app:hunter2@db.example:5432/jobs')).to.equal('postgres://app:***@db.example:5432/jobs');
    expect(maskUrl('mysql://:hunter2@db.example/jobs')).to.equal('mysql://:***@db.example/jobs');
    expect(maskUrl('MYSQL://app:hunter2@db.example/jobs')).to.equal('MYSQL://app:***@db.example/jobs');
  });

  it('leaves URLs without a password and other text unchanged', () => {
    expect(maskUrl('postgres://app@db.example/jobs')).to.equal('postgres://app@db.example/jobs');
    expect(maskUrl('postgres://db.example:5432/jobs')).to.equal('postgres://db.example:5432/jobs');
    expect(maskUrl('sqlite:data/app.sqlite3')).to.equal('sqlite:data/app.sqlite3');
    expect(maskUrl('just text')).to.equal('just text');
  });

  it('hides all of a password that contains "@" (the URL parser accepts it, taking the last "@")', () => {
    const url = 'postgres://app:p@ssw0rd@db.example/jobs';
    expect(new URL(url).hostname).to.equal('db.example');
    expect(maskUrl(url)).to.not.contain('ssw0rd');
  });
});

describe('parseDatabase', () => {
  describe('sqlite: URLs', () => {
    it('resolves a relative path against the base directory', () => {
      const spec = parseDatabase('sqlite:data/app.sqlite3', BASE, 'database');
      const file = path.join(BASE, 'data', 'app.sqlite3');
      expect(spec).to.deep.include({ dialect: 'sqlite', knex: null, display: `sqlite:${file}`, key: `sqlite:${file}` });
      expect(spec.config).to.deep.equal({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true });
    });

    it('accepts sqlite://relative and sqlite:///absolute', () => {
      expect(parseDatabase('sqlite://rel.db', BASE, 'database').display).to.equal(`sqlite:${path.join(BASE, 'rel.db')}`);
      expect(parseDatabase('sqlite:///var/lib/app.db', BASE, 'database').display).to.equal('sqlite:/var/lib/app.db');
      expect(parseDatabase('sqlite:/var/lib/app.db', BASE, 'database').display).to.equal('sqlite:/var/lib/app.db');
    });

    it('keeps :memory: as is', () => {
      const spec = parseDatabase('sqlite::memory:', BASE, 'database');
      expect((spec.config!.connection as { filename: string }).filename).to.equal(':memory:');
    });

    it('trims surrounding spaces', () => {
      expect(parseDatabase('  sqlite:a.db\n', BASE, 'database').display).to.equal(`sqlite:${path.join(BASE, 'a.db')}`);
    });

    it('rejects an empty path, naming the source', () => {
      expect(errorOf(() => parseDatabase('sqlite:', BASE, 'BGTASKS_DATABASE_URL')).message).to.match(
        /^Invalid BGTASKS_DATABASE_URL: "sqlite:" — expected a file path after "sqlite:"/,
      );
      expect(() => parseDatabase('sqlite://', BASE, 'database')).to.throw(ConfigError);
    });
  });

  describe('mysql:// and mariadb:// URLs', () => {
    it('becomes a mysql2 connection, with the password decoded and masked in the display', () => {
      const spec = parseDatabase('mysql://app:p%40ss%3Aword@db.example:3307/jobs', BASE, 'database');
      expect(spec.dialect).to.equal('mysql');
      expect(spec.config).to.deep.equal({
        client: 'mysql2',
        connection: { host: 'db.example', port: 3307, user: 'app', password: 'p@ss:word', database: 'jobs', charset: 'utf8mb4' },
      });
      expect(spec.display).to.equal('mysql://app:***@db.example:3307/jobs');
      expect(spec.display).to.not.contain('p%40ss');
      expect(spec.knex).to.equal(null);
    });

    it('treats mariadb:// as MySQL, with port 3306 and user root by default', () => {
      const spec = parseDatabase('mariadb://db.example/jobs', BASE, 'database');
      expect(spec.dialect).to.equal('mysql');
      expect(spec.config!.connection).to.deep.include({ host: 'db.example', port: 3306, user: 'root', password: '', database: 'jobs' });
    });
  });

  describe('postgres:// and postgresql:// URLs', () => {
    it('becomes a pg connection string, masked in the display', () => {
      const url = 'postgres://app:hunter2@db.example:5433/jobs';
      const spec = parseDatabase(url, BASE, 'database');
      expect(spec.dialect).to.equal('postgres');
      expect(spec.config).to.deep.equal({ client: 'pg', connection: { connectionString: url } });
      expect(spec.display).to.equal('postgres://app:***@db.example:5433/jobs');
    });

    it('accepts postgresql://', () => {
      expect(parseDatabase('postgresql://app@db.example/jobs', BASE, 'database').dialect).to.equal('postgres');
    });

    it('does not show a password given as a query parameter (pg reads ?password=)', () => {
      const spec = parseDatabase('postgres://app@db.example/jobs?password=hunter2', BASE, 'database');
      expect(spec.display).to.not.contain('hunter2');
    });
  });

  describe('bad URLs', () => {
    it('requires a host and a database, without showing the password', () => {
      for (const url of ['postgres://app:hunter2@db.example', 'mysql://app:hunter2@db.example/', 'mariadb://app:hunter2@db.example']) {
        const msg = errorOf(() => parseDatabase(url, BASE, 'database')).message;
        expect(msg, url).to.match(/^Invalid database: ".*" — expected (mysql|mariadb|postgres):\/\/user:password@host:port\/database/);
        expect(msg, url).to.not.contain('hunter2');
      }
    });

    it('reports a URL that does not parse, without showing the password', () => {
      for (const url of ['mysql://app:hunter2@db.example:notaport/jobs', 'mariadb://app:hunter2@/jobs']) {
        const msg = errorOf(() => parseDatabase(url, BASE, 'database')).message;
        expect(msg, url).to.contain('is not a valid URL');
        expect(msg, url).to.not.contain('hunter2');
      }
    });

    it('rejects unknown schemes and plain text, listing what is allowed, without the password', () => {
      const msg = errorOf(() => parseDatabase('mongodb://app:hunter2@db.example/jobs', BASE, 'database (from configure())')).message;
      expect(msg).to.match(/^Invalid database \(from configure\(\)\): "mongodb:\/\/app:\*\*\*@db\.example\/jobs" — expected a URL \(sqlite:/);
      expect(msg).to.not.contain('hunter2');
      expect(errorOf(() => parseDatabase('app.sqlite3', BASE, 'database')).message).to.contain('expected a URL');
    });

    it('rejects values that are neither a string, a knex config nor a knex instance', () => {
      expect(errorOf(() => parseDatabase(42 as never, BASE, 'database')).message).to.match(/^Invalid database: number — expected a URL/);
      expect(() => parseDatabase([] as never, BASE, 'database')).to.throw(ConfigError);
    });
  });

  describe('knex config objects', () => {
    it('knows the dialect from the client and masks the password in the display', () => {
      const pg = parseDatabase({ client: 'pg', connection: { host: 'db.example', port: 5433, user: 'app', password: 'hunter2', database: 'jobs' } }, BASE, 'database');
      expect(pg.dialect).to.equal('postgres');
      expect(pg.display).to.equal('postgres://app:***@db.example:5433/jobs');
      const my = parseDatabase({ client: 'mysql2', connection: 'mysql://app:hunter2@db.example/jobs' }, BASE, 'database');
      expect(my.dialect).to.equal('mysql');
      expect(my.display).to.equal('mysql://app:***@db.example/jobs');
      const cs = parseDatabase({ client: 'pg', connection: { connectionString: 'postgres://app:hunter2@db.example/jobs' } }, BASE, 'database');
      expect(cs.display).to.equal('postgres://app:***@db.example/jobs');
      for (const s of [pg, my, cs]) {
        expect(s.display).to.not.contain('hunter2');
        expect(s.key).to.not.contain('hunter2');
      }
    });

    it('resolves a relative SQLite filename against the base directory without changing the given object', () => {
      const given = { client: 'sqlite3', connection: { filename: 'jobs.db' }, useNullAsDefault: true };
      const spec = parseDatabase(given, BASE, 'database');
      expect(spec.dialect).to.equal('sqlite');
      expect((spec.config!.connection as { filename: string }).filename).to.equal(path.join(BASE, 'jobs.db'));
      expect(spec.display).to.equal(`sqlite:${path.join(BASE, 'jobs.db')}`);
      expect(given.connection.filename).to.equal('jobs.db');
    });

    it('accepts better-sqlite3 and mysql clients', () => {
      expect(parseDatabase({ client: 'better-sqlite3', connection: { filename: ':memory:' } }, BASE, 'database').dialect).to.equal('sqlite');
      expect(parseDatabase({ client: 'mysql', connection: { host: 'h', database: 'd' } }, BASE, 'database').dialect).to.equal('mysql');
    });

    it('rejects an unknown client, naming it', () => {
      expect(errorOf(() => parseDatabase({ client: 'oracledb' }, BASE, 'database')).message).to.match(
        /^Invalid database: knex config with client "oracledb" — expected client sqlite3, better-sqlite3, mysql2, mysql or pg$/,
      );
    });
  });

  describe('knex instances', () => {
    let a: Knex;
    let b: Knex;
    before(() => {
      a = knex({ client: 'sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
      b = knex({ client: 'sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
    });
    after(async () => {
      await a.destroy();
      await b.destroy();
    });

    it('is recognised as a knex instance, unlike a config object', () => {
      expect(isKnexInstance(a)).to.equal(true);
      expect(isKnexInstance({ client: 'sqlite3' })).to.equal(false);
      expect(isKnexInstance(() => 1)).to.equal(false);
    });

    it('is used as is, with its dialect and a display that names it', () => {
      const spec = parseDatabase(a, BASE, 'database');
      expect(spec.dialect).to.equal('sqlite');
      expect(spec.knex).to.equal(a);
      expect(spec.config).to.equal(null);
      expect(spec.display).to.equal("the application's knex instance (sqlite3)");
    });

    it('has a key that is stable for one instance and differs between instances', () => {
      expect(parseDatabase(a, BASE, 'x').key).to.equal(parseDatabase(a, BASE, 'y').key);
      expect(parseDatabase(a, BASE, 'x').key).to.not.equal(parseDatabase(b, BASE, 'x').key);
    });
  });
});

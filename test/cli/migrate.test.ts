/**
 * Schema migrations from the CLI, spawned with the real compiled binary: `process-tasks --migrate
 * --batch` on an unmigrated database, `migrate --status` before and after `migrate`, and a
 * database migrated by a newer bgtasks. On SQLite (the project's default file) and, when
 * configured, MariaDB and PostgreSQL.
 */
import { expect } from 'chai';
import { cliTargets, ranLines } from '../helpers/record-project.js';
import { parseDatabase } from '../../core/config/database-spec.js';
import { rollbackMigrations, schemaStatus } from '../../core/store/migrate.js';
import { readResult } from '../../core/api/results.js';
import { MIGRATIONS } from '../../migrations/list.js';
import { cliSuite, expectCode } from '../helpers/cli-suite.js';

const TASKS = `
import { appendFileSync } from 'node:fs';
import { background } from 'bgtasks';

export const record = background(async function record(n: number) {
  appendFileSync(process.env.RUN_LOG!, n + ' ' + process.pid + '\\n');
  return n * 2;
});
`;

const MIGRATION_NAMES = MIGRATIONS.map((m) => m.name);

for (const t of cliTargets()) {
  describe(`bgtasks migrate and process-tasks --migrate, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    const migrationsTable = `${t.prefix}migrations`;
    // Registered before cliSuite's hooks, so it runs before they roll the tables back (which
    // fails while the migrations table names a migration this version does not know).
    after(async () => {
      if (suite.store) await suite.store.knex(migrationsTable).where('name', 'like', '999_%').del().catch(() => {});
    });
    const suite = cliSuite(t, TASKS);
    const { cli, enqueue, migrated } = suite;
    let display: string;

    const unmigrate = async () => {
      await rollbackMigrations(suite.store.conn, t.prefix);
      expect((await schemaStatus(suite.store.conn, t.prefix)).applied).to.deep.equal([]);
    };

    before(() => {
      display = parseDatabase(t.url(suite.project), suite.project.dir, 'test').display;
    });

    it('process-tasks --migrate --batch migrates an unmigrated database, then runs; a later run executes enqueued work', async () => {
      await unmigrate();
      const first = await cli('process-tasks', '--migrate', '--batch');
      expectCode(first, 0);
      expect(first.stderr).to.equal('');
      const lines = first.stdout.split('\n');
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      const migratedAt = at(new RegExp(`INFO  migrated .*applied=${MIGRATION_NAMES.join(',')}$`));
      expect(migratedAt, first.stdout).to.be.at.least(0);
      expect(at(/INFO {2}worker started /), first.stdout).to.be.greaterThan(migratedAt);
      expect(at(/INFO {2}worker stopped .*reason=batch/), first.stdout).to.be.greaterThan(migratedAt);
      const status = await schemaStatus(suite.store.conn, t.prefix);
      expect(status).to.deep.equal({ applied: MIGRATION_NAMES, pending: [], unknown: [] });

      const ids = [await enqueue('record', [1]), await enqueue('record', [2]), await enqueue('record', [3])];
      const second = await cli('process-tasks', '--migrate', '--batch');
      expectCode(second, 0);
      expect(second.stdout).not.to.match(/INFO {2}migrated /);
      expect(ranLines(suite.runLog).map((l) => Number(l.split(' ')[0])).sort()).to.deep.equal([1, 2, 3]);
      for (const id of ids) expect((await readResult(suite.store, id)).status).to.equal('SUCCESSFUL');
    });

    it('migrate --status lists every migration pending (exit 3) before `bgtasks migrate`, and applied (exit 0) after', async () => {
      expect(MIGRATION_NAMES).to.include('001_initial');
      await unmigrate();
      const head = `database: ${display} (table prefix "${t.prefix}")`;
      const [before, beforeJson] = await Promise.all([cli('migrate', '--status'), cli('migrate', '--status', '--json')]);
      expectCode(before, 3);
      expect(before.stdout).to.equal(
        [head, ...MIGRATION_NAMES.map((n) => `  pending  ${n}`), `${MIGRATION_NAMES.length} pending: run \`bgtasks migrate\``, ''].join('\n'),
      );
      expectCode(beforeJson, 3);
      expect(JSON.parse(beforeJson.stdout)).to.deep.equal({ database: display, tablePrefix: t.prefix, applied: [], pending: MIGRATION_NAMES, unknown: [] });
      // --status changes nothing.
      expect((await schemaStatus(suite.store.conn, t.prefix)).applied).to.deep.equal([]);

      const m = await cli('migrate');
      expectCode(m, 0);
      expect(m.stdout).to.equal(`Applied ${MIGRATION_NAMES.length} migration(s) to ${display}: ${MIGRATION_NAMES.join(', ')}\n`);

      const [after, afterJson] = await Promise.all([cli('migrate', '--status'), cli('migrate', '--status', '--json')]);
      expectCode(after, 0);
      expect(after.stdout).to.equal([head, ...MIGRATION_NAMES.map((n) => `  applied  ${n}`), 'up to date', ''].join('\n'));
      expectCode(afterJson, 0);
      expect(JSON.parse(afterJson.stdout)).to.deep.equal({ database: display, tablePrefix: t.prefix, applied: MIGRATION_NAMES, pending: [], unknown: [] });
    });

    it('process-tasks refuses a database migrated by a newer bgtasks (exit 3, names the unknown migration, says to upgrade)', async () => {
      await migrated();
      const future = '999_from_a_future_version';
      await suite.store.knex(migrationsTable).insert({ name: future, batch: 99, migration_time: new Date() });
      try {
        const id = await enqueue('record', [42]);
        const [plain, withMigrate, migrate, status] = await Promise.all([
          cli('process-tasks', '--batch'),
          cli('process-tasks', '--batch', '--migrate'),
          cli('migrate'),
          cli('migrate', '--status'),
        ]);
        const refusal = `bgtasks: The database ${display} was migrated by a newer version of bgtasks (unknown migrations: ${future}). Upgrade bgtasks.\n`;
        for (const r of [plain, withMigrate, migrate]) {
          expectCode(r, 3);
          expect(r.stderr).to.equal(refusal);
        }
        for (const r of [plain, withMigrate]) expect(r.stdout).not.to.match(/worker started/);
        expectCode(status, 3);
        expect(status.stdout).to.include(`  applied  ${future}  (unknown to this version: upgrade bgtasks)\n`);
        expect(status.stdout).to.match(/\nmigrated by a newer bgtasks\n$/);
        // Nothing ran and the schema is as it was.
        expect(ranLines(suite.runLog).map((l) => Number(l.split(' ')[0]))).not.to.include(42);
        expect((await readResult(suite.store, id)).status).to.equal('READY');
        expect((await schemaStatus(suite.store.conn, t.prefix)).applied).to.deep.equal([...MIGRATION_NAMES, future]);
      } finally {
        await suite.store.knex(migrationsTable).where('name', future).del();
      }
      const again = await cli('process-tasks', '--batch');
      expectCode(again, 0);
      expect(ranLines(suite.runLog).map((l) => Number(l.split(' ')[0]))).to.include(42);
    });
  });
}

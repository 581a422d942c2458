/**
 * `bgtasks schedules`, spawned: a worker registers the cron schedules of its task files, and the
 * command lists them with their zone and next slot.
 */
import { expect } from 'chai';
import { makeProject, runCli, type Project } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { settingsFor } from '../helpers/databases.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';

const TASKS = `
import { background } from 'bgtasks';
export const nightly = background({ cron: '0 3 * * *', timezone: 'Europe/Berlin', args: ['full'] }, function nightly(kind: string) {
  return kind;
});
export const several = background({ cron: [{ cron: '*/15 * * * *', key: 'quarter' }, { cron: '0 12 * * 1', key: 'monday', args: [1] }] }, function several(n?: number) {
  return n ?? 0;
});
`;

for (const t of cliTargets()) {
  describe(`bgtasks schedules, spawned [${t.name}]`, function () {
    this.timeout(30_000);
    let project: Project;
    before(() => {
      project = makeProject({ 'tasks.ts': TASKS });
    });
    after(async () => {
      const store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('lists the schedules a worker registered, with zone, key and next slot', async () => {
      expect((await runCli(['migrate'], project.dir, t.env)).code).to.equal(0);
      const empty = await runCli(['schedules'], project.dir, t.env);
      expect(empty.stdout).to.match(/No cron schedules registered yet/);
      expect((await runCli(['process-tasks', '--batch', '--no-startup-delay'], project.dir, t.env)).code).to.equal(0);
      const r = await runCli(['schedules', '--json'], project.dir, t.env);
      expect(r.code, r.stderr).to.equal(0);
      const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      expect(list.map((s) => [s.name, s.key, s.cron, s.timezone])).to.deep.equal([
        ['nightly', 'default', '0 3 * * *', 'Europe/Berlin'],
        ['several', 'monday', '0 12 * * 1', 'UTC'],
        ['several', 'quarter', '*/15 * * * *', 'UTC'],
      ]);
      const nightly = list[0]!;
      expect(nightly.args).to.deep.equal(['full']);
      const next = Date.parse(String(nightly.nextSlot));
      expect(next).to.be.greaterThan(Date.now());
      expect(next - Date.now()).to.be.at.most(25 * 3600_000);
      const human = await runCli(['schedules'], project.dir, t.env);
      expect(human.stdout).to.match(/nightly\s+default\s+0 3 \* \* \*\s+Europe\/Berlin/);
      expect(human.stdout).not.to.match(/stale/);
    });

    it('marks a schedule no worker declared for 10 minutes as stale, and --remove deletes its record', async () => {
      const store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
      await store.knex(store.tables.schedules).where({ name: 'several', key: 'quarter' }).update({ updated_at: Date.now() - 11 * 60_000 });
      const listed = JSON.parse((await runCli(['schedules', '--json'], project.dir, t.env)).stdout) as Array<{ key: string; stale: boolean }>;
      expect(listed.map((s) => [s.key, s.stale])).to.deep.equal([
        ['default', false],
        ['monday', false],
        ['quarter', true],
      ]);
      expect((await runCli(['schedules'], project.dir, t.env)).stdout).to.match(/quarter.*\(stale\)/);
      const removed = await runCli(['schedules', '--remove', 'several:quarter'], project.dir, t.env);
      expect(removed.code, removed.stderr).to.equal(0);
      expect(removed.stdout).to.match(/Removed 1 schedule record/);
      const none = await runCli(['schedules', '--remove', 'several:nope'], project.dir, t.env);
      expect(none.code).to.equal(2);
      expect(none.stderr).to.match(/No cron schedule matches "several:nope"/);
      const after = JSON.parse((await runCli(['schedules', '--json'], project.dir, t.env)).stdout) as unknown[];
      expect(after).to.have.length(2);
    });
  });
}

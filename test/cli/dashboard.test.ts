/**
 * `bgtasks dashboard`, spawned, on every database: it prints its address and serves pages with
 * the database's tasks; an action through its API changes the database, and `--read-only`
 * refuses it; a non-loopback host without BGTASKS_DASHBOARD_AUTH exits 2 naming the fix; SIGTERM
 * and SIGINT stop it with exit 0.
 */
import { expect } from 'chai';
import { settingsFor, waitUntil } from '../helpers/databases.js';
import { killLeftovers, makeProject, runCli, startCli, type Project, type Spawned } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { expectCode } from '../helpers/cli-suite.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask } from '../../core/store/rows.js';
import type { Store } from '../../core/store/store.js';

for (const t of cliTargets()) {
  describe(`bgtasks dashboard, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    let env: Record<string, string>;
    const children: Spawned[] = [];

    const insert = async (name: string, runAt: number) => {
      const args = JSON.stringify(['<b>bold</b>']);
      const [id] = await store.insertTasks([plainTask({ name, args, hash: taskHash(name, args), runAt, enqueuedAt: Date.now() })]);
      return id!;
    };
    /** Starts the dashboard on a free port and waits for the address it prints. */
    const start = async (...flags: string[]): Promise<{ child: Spawned; url: string }> => {
      const child = startCli(['dashboard', '--port', '0', ...flags], project.dir, env);
      children.push(child);
      let url = '';
      await waitUntil(() => {
        const m = /(http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(child.stdout());
        if (m) url = m[1]!;
        return url !== '' || child.child.exitCode !== null;
      }, `the dashboard's address (stderr: ${child.stderr()})`, 30_000);
      expect(url, child.stderr()).to.not.equal('');
      return { child, url };
    };
    const runAtOf = async (id: string) => Number(((await store.knex(store.tables.tasks).where('id', id).first('run_at')) as { run_at: unknown }).run_at);

    before(async function () {
      project = makeProject({ 'tasks.ts': 'export {};\n' });
      env = { ...t.env };
      expectCode(await runCli(['migrate'], project.dir, env), 0);
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
    });
    after(async function () {
      await killLeftovers(children);
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('serves pages with the stored tasks, acts through its API, and stops on SIGTERM with exit 0', async () => {
      const later = await insert('dash.cli.later', Date.now() + 3_600_000);
      const { child, url } = await start();
      const page = await fetch(`${url}tasks`);
      expect(page.status).to.equal(200);
      const text = await page.text();
      expect(text).to.include('dash.cli.later');
      expect(text).to.include('&lt;b&gt;bold&lt;/b&gt;');
      expect(text).to.not.include('<b>bold</b>');
      const csrf = await fetch(`${url}api/csrf`);
      const cookie = (csrf.headers.get('set-cookie') ?? '').split(';')[0]!;
      const { token } = (await csrf.json()) as { token: string };
      const act = await fetch(`${url}api/actions/runNow`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': token, cookie },
        body: JSON.stringify({ ids: [later] }),
      });
      expect(act.status, await act.clone().text()).to.equal(200);
      expect(((await act.json()) as { changed: number }).changed).to.equal(1);
      expect(await runAtOf(later)).to.be.at.most(Date.now());
      child.child.kill('SIGTERM');
      const r = await child.exited;
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/stopped \(SIGTERM\)/);
    });

    it('--read-only refuses an action with 403 and changes nothing; SIGINT stops it with exit 0', async () => {
      const later = await insert('dash.cli.readonly', Date.now() + 3_600_000);
      const before = await runAtOf(later);
      const { child, url } = await start('--read-only', '--base-path', '/admin/queue');
      expect(url).to.match(/\/admin\/queue\/$/);
      expect((await fetch(`${url}tasks`)).status).to.equal(200);
      const act = await fetch(`${url}api/actions/runNow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: [later] }) });
      expect(act.status).to.equal(403);
      expect(await act.text()).to.match(/read-only/);
      expect(await runAtOf(later)).to.equal(before);
      child.child.kill('SIGINT');
      const r = await child.exited;
      expect(r.code, r.stderr).to.equal(0);
    });

    it('with BGTASKS_DASHBOARD_AUTH it serves a non-loopback host, to requests that bring the password only, and never prints it', async () => {
      const child = startCli(['dashboard', '--port', '0', '--host', '0.0.0.0'], project.dir, { ...env, BGTASKS_DASHBOARD_AUTH: 'pa55-word' });
      children.push(child);
      let port = '';
      await waitUntil(() => {
        port = /http:\/\/0\.0\.0\.0:(\d+)\//.exec(child.stdout())?.[1] ?? '';
        return port !== '' || child.child.exitCode !== null;
      }, `the dashboard's address (stderr: ${child.stderr()})`, 30_000);
      expect(port, child.stderr()).to.not.equal('');
      expect((await fetch(`http://127.0.0.1:${port}/tasks`)).status).to.equal(401);
      expect((await fetch(`http://127.0.0.1:${port}/tasks`, { headers: { authorization: 'Bearer wrong' } })).status).to.equal(401);
      expect((await fetch(`http://127.0.0.1:${port}/tasks`, { headers: { authorization: 'Bearer pa55-word' } })).status).to.equal(200);
      child.child.kill('SIGTERM');
      const r = await child.exited;
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout + r.stderr).to.not.include('pa55-word');
    });

    it('refuses a non-loopback host without a password (exit 2, naming BGTASKS_DASHBOARD_AUTH), and bad flags with exit 2', async () => {
      let r = await runCli(['dashboard', '--host', '0.0.0.0', '--port', '0'], project.dir, env);
      expectCode(r, 2);
      expect(r.stderr).to.match(/BGTASKS_DASHBOARD_AUTH/);
      r = await runCli(['dashboard', '--port', '70000'], project.dir, env);
      expectCode(r, 2);
      expect(r.stderr).to.match(/--port/);
      r = await runCli(['dashboard', '--port', '0', '--base-path', 'admin'], project.dir, env);
      expectCode(r, 2);
      expect(r.stderr).to.match(/--base-path/);
    });
  });
}

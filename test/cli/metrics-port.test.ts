/**
 * `process-tasks --metrics-port`, spawned: the worker serves its metrics at /metrics in the
 * Prometheus text format while it runs, and they count the attempts it made; bad values of the
 * flags, or a port in use, stop it with exit 2 before it claims anything. On every database.
 */
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cliSuite, expectCode } from '../helpers/cli-suite.js';
import { startCli, type Spawned } from '../helpers/project.js';
import { cliTargets, RECORD_TASKS } from '../helpers/record-project.js';
import { waitUntil } from '../helpers/databases.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';

const TASKS = `${RECORD_TASKS}
export const boom = background({ maxAttempts: 1 }, function boom() {
  throw new Error('boom');
});
`;

for (const t of cliTargets()) {
  describe(`bgtasks process-tasks --metrics-port, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    const s = cliSuite(t, TASKS);
    let worker: Spawned | null = null;

    afterEach(async () => {
      if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
        worker.child.kill('SIGKILL');
        await worker.exited;
      }
      worker = null;
    });

    it('serves the worker\'s metrics at /metrics while it runs, counting its attempts', async () => {
      await s.migrated();
      for (let i = 1; i <= 3; i++) await s.enqueue('record', [i]);
      await s.enqueue('boom', []);
      worker = startCli(['process-tasks', '--metrics-port', '0', '--sleep', '0.1', '--no-startup-delay', '--log-format', 'json', '--worker-id', `metrics-${t.name}`], s.project.dir, s.env);
      let url = '';
      await waitUntil(() => {
        url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(worker!.stdout())?.[1] ?? '';
        return url !== '' || worker!.child.exitCode !== null;
      }, 'the metrics line', 30_000, 50);
      expect(url, worker.stdout() + worker.stderr()).to.not.equal('');
      const scrape = async () => {
        const res = await fetch(url);
        expect(res.status).to.equal(200);
        expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
        return parseExposition(await res.text());
      };
      await waitUntil(async () => (sampleValue(await scrape(), 'bgtasks_attempts_total', { task: 'boom', outcome: 'failed' }) ?? 0) === 1 && (sampleValue(await scrape(), 'bgtasks_attempts_total', { task: 'record', outcome: 'succeeded' }) ?? 0) === 3, 'four attempts to be counted', 30_000, 100);
      const samples = await scrape();
      expect(sampleValue(samples, 'bgtasks_attempts_total', { task: 'record', queue: '', outcome: 'succeeded' })).to.equal(3);
      expect(sampleValue(samples, 'bgtasks_attempt_duration_seconds_count', { task: 'record', queue: '' })).to.equal(3);
      expect(sampleValue(samples, 'bgtasks_claim_batch_size_sum')).to.equal(4);
      expect(sampleValue(samples, 'bgtasks_worker_info', { worker_id: `metrics-${t.name}` })).to.equal(1);
      expect(sampleValue(samples, 'bgtasks_worker_running_tasks', { worker_id: `metrics-${t.name}` })).to.equal(0);
      const other = await fetch(url.replace('/metrics', '/'));
      expect(other.status).to.equal(404);
      await other.text();
      worker.child.kill('SIGTERM');
      const r = await worker.exited;
      expectCode(r, 0);
    });

    if (t.name !== 'sqlite') return;

    it('refuses bad values and a port in use with exit 2, naming the flag, before claiming anything', async () => {
      await s.migrated();
      const id = await s.enqueue('record', [9]);
      for (const [args, message] of [
        [['--metrics-port', 'abc'], /Invalid --metrics-port: "abc" — expected a port number from 0 to 65535/],
        [['--metrics-port', '70000'], /Invalid --metrics-port: "70000"/],
        [['--metrics-host', '0.0.0.0'], /Invalid --metrics-host: it needs --metrics-port/],
      ] as const) {
        const r = await s.cli('process-tasks', '--batch', '--no-startup-delay', ...args);
        expectCode(r, 2);
        expect(r.stderr).to.match(message);
      }
      const busy = http.createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      try {
        const port = (busy.address() as AddressInfo).port;
        const r = await s.cli('process-tasks', '--batch', '--no-startup-delay', '--metrics-port', String(port));
        expectCode(r, 2);
        expect(r.stderr).to.match(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} — the port is in use`));
      } finally {
        await new Promise((resolve) => busy.close(resolve));
      }
      // Nothing was claimed.
      const row = (await s.store.knex(s.store.tables.tasks).where('id', id).first()) as Record<string, unknown>;
      expect(Number(row.attempts)).to.equal(0);
    });
  });
}

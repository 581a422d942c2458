/**
 * SIGINT on a plain process-tasks worker, spawned with the real compiled binary: the first signal
 * stops claiming and lets the running task finish; a second one aborts it and gives its attempt
 * back. On SQLite (the project's default file) and, when configured, MariaDB and PostgreSQL.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitUntil } from '../helpers/databases.js';
import { killLeftovers, startCli, type Spawned } from '../helpers/project.js';
import { cliTargets, ranLines } from '../helpers/record-project.js';
import { readResult } from '../../core/api/results.js';
import { cliSuite, expectCode } from '../helpers/cli-suite.js';

const TASKS = `
import { appendFileSync, existsSync } from 'node:fs';
import { background } from 'bgtasks';

export const record = background(async function record(n: number) {
  appendFileSync(process.env.RUN_LOG!, n + ' ' + process.pid + '\\n');
  return n * 2;
});

/** Runs until the file \`gate\` exists (the test creates it), or until its signal aborts. */
export const gated = background({ name: 'gated', context: true }, async function gated(ctx: any, gate: string) {
  ctx.signal.addEventListener('abort', () => appendFileSync(process.env.ABORT_LOG!, String(ctx.signal.reason?.name) + '\\n'));
  while (!existsSync(gate) && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
  if (ctx.signal.aborted) throw ctx.signal.reason;
  return 'opened';
});
`;

for (const t of cliTargets()) {
  describe(`SIGINT on process-tasks, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    const suite = cliSuite(t, TASKS);
    const { enqueue, migrated } = suite;
    const children: Spawned[] = [];
    const worker = (...args: string[]) => {
      // -v: a task's start is a debug line.
      const s = startCli(['process-tasks', '--no-startup-delay', '--sleep', '0.1', '-v', ...args], suite.project.dir, suite.env);
      children.push(s);
      return s;
    };

    afterEach(async () => {
      await killLeftovers(children);
    });

    it('SIGINT on a plain worker: no new claims, the running task finishes, exit 0', async () => {
      await migrated();
      const gate = path.join(suite.project.dir, 'gate-open');
      const id = await enqueue('gated', [gate]);
      const w = worker('--grace', '30');
      await waitUntil(() => new RegExp(`task started .*id=${id} name=gated`).test(w.stdout()), 'the gated task to start', 20_000);
      w.child.kill('SIGINT');
      await waitUntil(() => /WARN {2}SIGINT received: no new tasks/.test(w.stdout()), 'the worker to log the signal', 10_000);
      const late = await enqueue('record', [77]);
      expect(w.child.exitCode, 'the worker exited before its task finished').to.equal(null);
      expect((await readResult(suite.store, id)).status).to.equal('RUNNING');

      writeFileSync(gate, '');
      const r = await w.exited;
      expectCode(r, 0);
      expect(r.stderr).to.equal('');
      expect(r.stdout).to.match(new RegExp(`task succeeded .*id=${id} name=gated`));
      expect(r.stdout).not.to.match(/received again/);
      const res = await readResult<string>(suite.store, id);
      expect(res.status).to.equal('SUCCESSFUL');
      expect(res.returnValue).to.equal('opened');
      expect(res.attempts).to.equal(1);
      // Enqueued after the signal: left for the next worker.
      const lateRes = await readResult(suite.store, late);
      expect(lateRes.status).to.equal('READY');
      expect(lateRes.attempts).to.equal(0);
      expect(ranLines(suite.runLog).map((l) => Number(l.split(' ')[0]))).not.to.include(77);
    });

    it('a second SIGINT while the task still runs stops at once: exit 0, the task READY again, attempt given back, no error', async () => {
      await migrated();
      writeFileSync(suite.abortLog, '');
      const id = await enqueue('gated', [path.join(suite.project.dir, 'gate-never-opened')]);
      const w = worker('--grace', '30');
      await waitUntil(() => new RegExp(`task started .*id=${id} name=gated`).test(w.stdout()), 'the gated task to start', 20_000);
      w.child.kill('SIGINT');
      await waitUntil(() => /WARN {2}SIGINT received: no new tasks/.test(w.stdout()), 'the worker to log the first signal', 10_000);
      expect((await readResult(suite.store, id)).status).to.equal('RUNNING');
      const sentAt = Date.now();
      w.child.kill('SIGINT');
      const r = await w.exited;
      // Well inside the 30 s grace the first signal granted.
      expect(Date.now() - sentAt).to.be.below(10_000);
      expectCode(r, 0);
      expect(r.stderr).to.equal('');
      expect(r.stdout).to.match(/WARN {2}SIGINT received again: aborting running tasks and releasing them/);
      expect(r.stdout).to.match(new RegExp(`task released \\(attempt given back\\) .*id=${id} name=gated.*outcome=released`));
      expect(readFileSync(suite.abortLog, 'utf8')).to.equal('WorkerStoppedError\n');

      const res = await readResult(suite.store, id);
      expect(res.status).to.equal('READY');
      expect(res.attempts).to.equal(0);
      expect(res.errors).to.deep.equal([]);
      expect(res.hasError).to.equal(false);
      const row = (await suite.store.findPending(id))!;
      expect(row.lockedBy).to.equal(null);
    });
  });
}

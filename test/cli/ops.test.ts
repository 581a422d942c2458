/**
 * The operations commands, spawned as the real compiled CLI on SQLite and (when configured)
 * MariaDB and PostgreSQL: list, show, stats, health, enqueue, retry, delete, cancel and
 * prune-results, with their exit codes (0 ok, 1 failure, 2 usage, 3 not migrated) and JSON.
 */
import { expect } from 'chai';
import { settingsFor } from '../helpers/databases.js';
import { makeProject, runCli, type Project, type RunResult } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import { closeConnections } from '../../core/store/connection.js';
import { rollbackMigrations } from '../../core/store/migrate.js';
import { taskHash } from '../../core/base/json.js';
import type { Store } from '../../core/store/store.js';
import { plainTask } from '../../core/store/rows.js';

const TASKS = `
import { background, PermanentTaskError } from 'bgtasks';

export const record = background(async function record(n: number) {
  return { n, doubled: n * 2 };
});

export const checked = background(
  { name: 'checked', validate: (args: unknown[]) => (args.length === 1 && typeof args[0] === 'number') || 'expected one number' },
  async function checked(_n: number) {},
);

export const fails = background({ name: 'fails', queue: 'bad' }, async function fails(why: string) {
  throw new PermanentTaskError(why, { cause: new TypeError('the cause') });
});
`;

const DAY = 86_400_000;
const COMMANDS = ['list', 'show', 'stats', 'health', 'enqueue', 'retry', 'delete', 'cancel', 'prune-results'];

function expectOk(r: RunResult): void {
  expect(r.code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).to.equal(0);
}

/** A usage error: exit 2, one line on stderr, no stack trace. */
function expectUsage(r: RunResult, pattern: RegExp): void {
  expect(r.code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).to.equal(2);
  expect(r.stderr).to.match(pattern);
  expect(r.stderr.trim().split('\n')[0]).to.match(/^(bgtasks: |error: )/);
  expect(r.stderr).not.to.match(/\n\s+at /);
}

for (const t of cliTargets()) {
  describe(`bgtasks operations commands, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    let project: Project;
    let store: Store;
    let env: Record<string, string>;
    const cli = (...args: string[]) => runCli(args, project.dir, env);
    // Flag parsing does not depend on the database: checked once, on SQLite.
    const everyCheck = t.name === 'sqlite';

    const count = async (table: 'tasks' | 'completed'): Promise<number> => {
      const [row] = (await store.knex(store.tables[table]).count({ n: '*' })) as Array<{ n: unknown }>;
      return Number(row!.n);
    };
    const snapshot = async () => ({ tasks: await count('tasks'), completed: await count('completed') });

    /** A finished task written straight into the completed table. */
    const finished = async (id: number, o: { ageMs: number; failed?: boolean; queue?: string | null; name?: string; args?: string }) => {
      const at = Date.now() - o.ageMs;
      const name = o.name ?? 'record';
      const args = o.args ?? `[${id}]`;
      await store.knex(store.tables.completed).insert({
        task_id: id,
        name,
        args,
        hash: taskHash(name, args),
        queue: o.queue ?? null,
        priority: 0,
        run_at: at - 1000,
        scheduled_at: at - 1000,
        enqueued_at: at - 2000,
        attempts: 1,
        started_at: at - 10,
        finished_at: at,
        failed_at: o.failed ? at : null,
        return_value: o.failed ? null : '{"n":1}',
        last_error: o.failed ? 'Error: old failure' : null,
        worker_id: 'old-worker',
      });
    };
    const claimOne = async (name = 'record') => {
      const [task] = await store.claim({ names: [name], queues: null, excludeQueues: null, ordering: 'DESC', workerId: 'test-worker', nowMs: Date.now(), leaseMs: 600_000, limit: 1 });
      return task!;
    };
    /** A pending task written straight into the pending table (faster than spawning `enqueue`). */
    const addPending = async (name: string, args: unknown[], o: { queue?: string | null; priority?: number; runAt?: number } = {}) => {
      const text = JSON.stringify(args);
      const now = Date.now();
      const task = plainTask({
        name,
        args: text,
        hash: taskHash(name, text),
        queue: o.queue ?? null,
        priority: o.priority ?? 0,
        runAt: o.runAt ?? now,
        enqueuedAt: now,
      });
      const [id] = await store.insertTasks([task]);
      return { id: id! };
    };
    const enqueue = async (...args: string[]) => {
      const r = await cli('enqueue', ...args, '--json');
      expectOk(r);
      return JSON.parse(r.stdout) as { id: string; name: string; queue: string | null; runAt: string; outcome: string };
    };
    const reset = async () => {
      await store.knex(store.tables.tasks).del();
      await store.knex(store.tables.completed).del();
      await store.knex(store.tables.locks).del();
    };

    before(async () => {
      project = makeProject({ 'tasks.ts': TASKS });
      env = { ...t.env };
      store = await storeFor(await settingsFor(t.url(project), t.prefix, project.dir));
    });
    after(async () => {
      if (store) await rollbackMigrations(store.conn, t.prefix).catch(() => {});
      forgetStores();
      await closeConnections();
      project.remove();
    });

    it('every command refuses a database that is not migrated: exit 3, naming what to run', async () => {
      const all = [
        ['list'],
        ['enqueue', 'record', '--args', '[1]'],
        ['prune-results', '--dry-run'],
        ['show', '1'],
        ['stats'],
        ['health', '--max-wait', '60'],
        ['retry', '1'],
        ['delete', '1'],
        ['cancel', '1'],
      ];
      const runs = await Promise.all((everyCheck ? all : all.slice(0, 3)).map((args) => cli(...args)));
      for (const r of runs) {
        expect(r.code, r.stderr).to.equal(3);
        expect(r.stderr).to.match(/not migrated.*bgtasks migrate/s);
        expect(r.stderr).not.to.match(/\n\s+at /);
      }
      expectOk(await cli('migrate'));
      // Migrated and empty: nothing is due, which health says in words (not "waited 0 s").
      const empty = await cli('health', '--max-wait', '60');
      expectOk(empty);
      expect(empty.stdout).to.match(/^OK: no task is due \(max 60 s\); 0 failure\(s\) in the last hour; /);
    });

    if (t.name === 'sqlite') {
      it('every command has --help with examples (exit 0)', async () => {
        const runs = await Promise.all(COMMANDS.map((c) => cli(c, '--help')));
        runs.forEach((r, i) => {
          expectOk(r);
          expect(r.stdout, COMMANDS[i]).to.match(new RegExp(`Usage: bgtasks ${COMMANDS[i]}`));
          expect(r.stdout, COMMANDS[i]).to.match(/Examples:\n\s+\$ bgtasks /);
          expect(r.stdout, COMMANDS[i]).to.match(/--database/);
          expect(r.stdout, COMMANDS[i]).to.match(/Exit codes:/);
        });
      });
    }

    it('enqueue: stores a call of a registered task and prints its TaskRef; bad input changes nothing (exit 2)', async () => {
      await reset();
      const a = await enqueue('record', '--args', '[1]');
      expect(a).to.include({ name: 'record', queue: null, outcome: 'created' });
      expect(Math.abs(Date.parse(a.runAt) - Date.now())).to.be.below(30_000);
      const human = await cli('enqueue', 'record', '--args', '[2]', '--in', '3600', '--queue', 'later', '--priority', '7');
      expectOk(human);
      expect(human.stdout).to.match(/^Enqueued record #\d+ \(queue later, runs at \d{4}-\d\d-\d\dT[\d:.]+Z, created\)\n$/);
      const row = (await store.knex(store.tables.tasks).where('queue', 'later').first()) as Record<string, unknown>;
      expect(row).to.include({ name: 'record', args: '[2]' });
      expect(Number(row.priority)).to.equal(7);
      expect(Number(row.run_at) - Date.now()).to.be.within(3_500_000, 3_600_000);

      if (!everyCheck) return;
      const before = await snapshot();
      const [malformed, notArray, unknown, badPriority, badIn, badQueue, invalid, farIn] = await Promise.all([
        cli('enqueue', 'record', '--args', '[1,'),
        cli('enqueue', 'record', '--args', '{"n":1}'),
        cli('enqueue', 'nosuchtask', '--args', '[]'),
        cli('enqueue', 'record', '--args', '[1]', '--priority', '1.5'),
        cli('enqueue', 'record', '--args', '[1]', '--in', '-5'),
        cli('enqueue', 'record', '--args', '[1]', '--queue', ''),
        cli('enqueue', 'checked', '--args', '["x"]'),
        cli('enqueue', 'record', '--args', '[1]', '--in', '253000000000'),
      ]);
      expectUsage(malformed, /Invalid --args: .*expected a JSON array/);
      expectUsage(notArray, /Invalid --args: \{"n":1\} is not a JSON array/);
      expectUsage(unknown, /Unknown task "nosuchtask" — the task files register: checked, fails, record/);
      expectUsage(badPriority, /Invalid --priority: "1.5" — expected an integer/);
      expectUsage(badIn, /Invalid --in: "-5"/);
      expectUsage(badQueue, /^bgtasks: Invalid --queue: "" — expected a queue name \(1 to 190 characters\)\n$/);
      expectUsage(farIn, /^bgtasks: Invalid --in: "253000000000" — expected seconds from now >= 0 and at most 3153600000 \(100 years; fractions allowed\)\n$/);
      expectUsage(invalid, /checked: invalid arguments — expected one number/);
      expect(await snapshot()).to.deep.equal(before);
    });

    it('list and show: filters, a table or JSON, and every detail of one task', async () => {
      await reset();
      const a = await addPending('record', [10]);
      const b = await addPending('fails', ['nope'], { queue: 'bad', priority: 3 });
      await finished(900_001, { ageMs: 60_000 });
      await finished(900_002, { ageMs: 30_000, failed: true, queue: 'bad', name: 'fails', args: '["x"]' });
      const running = await claimOne('record');
      expect(running.id).to.equal(a.id);

      const [all, ready, failedBad, table, byName] = await Promise.all([
        cli('list', '--json'),
        cli('list', '--state', 'ready', '--json'),
        cli('list', '--state', 'failed,successful', '--queue', 'bad', '--json'),
        cli('list', '--limit', '3'),
        cli('list', '--name', 'fails', '--json'),
      ]);
      for (const r of [all, ready, failedBad, table, byName]) expectOk(r);
      type Entry = { id: string; status: string; name: string; queue: string | null; args: unknown[]; runAt: string };
      const ids = (r: RunResult) => (JSON.parse(r.stdout) as Entry[]).map((e) => `${e.id}:${e.status}`);
      expect(ids(all)).to.deep.equal([`${a.id}:RUNNING`, `${b.id}:READY`, '900002:FAILED', '900001:SUCCESSFUL']);
      expect(ids(ready)).to.deep.equal([`${b.id}:READY`]);
      expect(ids(failedBad)).to.deep.equal(['900002:FAILED']);
      expect(ids(byName)).to.deep.equal([`${b.id}:READY`, '900002:FAILED']);
      const entry = (JSON.parse(all.stdout) as Entry[])[1]!;
      expect(entry).to.include({ name: 'fails', queue: 'bad' });
      expect(entry.args).to.deep.equal(['nope']);
      expect(entry.runAt).to.match(/Z$/);
      expect(table.stdout.split('\n')[0]).to.match(/^ID\s+STATUS\s+NAME\s+QUEUE\s+PRIORITY\s+ATTEMPTS\s+TIME \(UTC\)\s+ARGS$/);
      expect(table.stdout).to.match(new RegExp(`${a.id}\\s+running\\s+record`));
      expect(table.stdout).to.match(/first 3; use --limit for more/);

      const [showRunning, showFailed, showJson, unknown] = await Promise.all([
        cli('show', a.id),
        cli('show', '900002'),
        cli('show', '900001', '--json'),
        cli('show', '123456789'),
      ]);
      expectOk(showRunning);
      expect(showRunning.stdout).to.match(new RegExp(`^Task #${a.id}  record`));
      expect(showRunning.stdout).to.match(/status:\s+running/);
      expect(showRunning.stdout).to.match(/worker:\s+test-worker/);
      expect(showRunning.stdout).to.match(/lease until:\s+\d{4}-\d\d-\d\dT[\d:.]+Z/);
      expect(showRunning.stdout).to.match(/args:\s+\[10\]/);
      expectOk(showFailed);
      expect(showFailed.stdout).to.match(/status:\s+failed/);
      expect(showFailed.stdout).to.match(/last error:\n\s+Error: old failure/);
      expectOk(showJson);
      const d = JSON.parse(showJson.stdout) as Record<string, unknown>;
      expect(d).to.include({ id: '900001', status: 'SUCCESSFUL', workerId: 'old-worker', attempts: 1 });
      expect(d.returnValue).to.deep.equal({ n: 1 });
      expect(d.finishedAt).to.match(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
      expectUsage(unknown, /No task with id 123456789/);
      if (everyCheck) {
        const [badState, invalid, badCreator, badLimit] = await Promise.all([
          cli('list', '--state', 'done'),
          cli('show', 'abc'),
          cli('list', '--creator', 'user'),
          cli('list', '--limit', '0'),
        ]);
        expectUsage(badState, /Invalid --state: "done" — expected ready, running, successful, failed/);
        expectUsage(invalid, /Invalid task id "abc"/);
        expectUsage(badCreator, /Invalid --creator: "user" — expected type:id/);
        expectUsage(badLimit, /Invalid --limit: "0"/);
      }
    });

    it('stats and health: counts per queue and state, the oldest due wait, failures in the last hour', async () => {
      await reset();
      // A task due two hours ago that nobody ran, and one due now.
      const a = await addPending('record', [1], { runAt: Date.now() - 2 * 3_600_000 });
      await addPending('fails', ['a'], { queue: 'bad' });
      await finished(900_010, { ageMs: 10 * 60_000, failed: true, queue: 'bad', name: 'fails' });
      await finished(900_011, { ageMs: 3 * 3_600_000, failed: true });
      await finished(900_012, { ageMs: 60_000 });

      const [statsJson, statsTable, healthy, waitTooLong, tooManyFailures, healthJson] = await Promise.all([
        cli('stats', '--json'),
        cli('stats'),
        cli('health', '--max-wait', '86400', '--max-failures', '2'),
        cli('health', '--max-wait', '3600'),
        cli('health', '--max-wait', '86400', '--max-failures', '1'),
        cli('health', '--max-wait', '3600', '--json'),
      ]);
      expectOk(statsJson);
      const s = JSON.parse(statsJson.stdout) as {
        queues: Array<Record<string, unknown>>;
        totals: Record<string, number>;
        oldestDue: { id: string; waitSeconds: number };
        failuresLastHour: number;
      };
      expect(s.queues).to.deep.equal([
        { queue: null, READY: 1, RUNNING: 0, SUCCESSFUL: 1, FAILED: 1 },
        { queue: 'bad', READY: 1, RUNNING: 0, SUCCESSFUL: 0, FAILED: 1 },
      ]);
      expect(s.totals).to.deep.equal({ READY: 2, RUNNING: 0, SUCCESSFUL: 1, FAILED: 2 });
      expect(s.failuresLastHour).to.equal(1);
      expect(s.oldestDue.id).to.equal(a.id);
      expect(s.oldestDue.waitSeconds).to.be.within(7200, 7300);
      expectOk(statsTable);
      expect(statsTable.stdout).to.match(/^QUEUE\s+READY\s+RUNNING\s+SUCCESSFUL\s+FAILED\n-\s+1\s+0\s+1\s+1\nbad\s+1\s+0\s+0\s+1\n\(all\)\s+2\s+0\s+1\s+2\n/);
      expect(statsTable.stdout).to.match(new RegExp(`Oldest due task: #${a.id} record .*waiting 2 h`));
      expect(statsTable.stdout).to.match(/Failures in the last hour: 1/);

      expectOk(healthy);
      expect(healthy.stdout).to.match(/^OK: /);
      expect(waitTooLong.code).to.equal(1);
      expect(waitTooLong.stdout).to.match(new RegExp(`^UNHEALTHY: task #${a.id} \\(record\\) has waited 2 h.*more than --max-wait 3600 s\\n$`));
      expect(tooManyFailures.code).to.equal(1);
      expect(tooManyFailures.stdout).to.match(/^UNHEALTHY: 1 task\(s\) failed in the last hour, --max-failures is 1\n$/);
      expect(healthJson.code).to.equal(1);
      expect(JSON.parse(healthJson.stdout)).to.include({ ok: false, failuresLastHour: 1, maxWait: 3600 });
      if (everyCheck) {
        const [missing, negative] = await Promise.all([cli('health'), cli('health', '--max-wait', '-1')]);
        expectUsage(missing, /required option '--max-wait <seconds>' not specified/);
        expectUsage(negative, /Invalid --max-wait: "-1"/);
      }
    });

    it('retry: copies failed tasks into new pending ones (ids or --failed); the failed records stay; other ids exit 2', async () => {
      await reset();
      await finished(900_020, { ageMs: 5 * 60_000, failed: true, queue: 'bad', name: 'fails', args: '["one"]' });
      await finished(900_021, { ageMs: 2 * DAY, failed: true });
      await finished(900_022, { ageMs: 60_000 });
      const pending = await addPending('record', [5]);

      const before = await snapshot();
      const parsing = [['retry'], ['retry', '900020', '--failed'], ['retry', '--since', '60'], ['retry', '--failed', '--since', 'yesterday']];
      const refused = await Promise.all([
        cli('retry', '900020', '900022'),
        cli('retry', '900020', pending.id),
        cli('retry', '900020', '424242'),
        ...(everyCheck ? parsing : []).map((args) => cli(...args)),
      ]);
      expectUsage(refused[0]!, /#900022 is SUCCESSFUL; only FAILED tasks can be retried/);
      expectUsage(refused[1]!, /is READY, not FAILED/);
      expectUsage(refused[2]!, /No task with id 424242/);
      if (everyCheck) {
        expectUsage(refused[3]!, /Missing task id\(s\) or --failed/);
        expectUsage(refused[4]!, /either task ids or --failed/);
        expectUsage(refused[5]!, /add --failed/);
        expectUsage(refused[6]!, /Invalid --since: "yesterday"/);
      }
      expect(await snapshot()).to.deep.equal(before);

      const byId = await cli('retry', '900020');
      expectOk(byId);
      const m = /^Retried fails #900020 as #(\d+)\n$/.exec(byId.stdout);
      expect(m, byId.stdout).to.not.equal(null);
      const copy = (await store.findPending(m![1]!))!;
      expect(copy).to.include({ name: 'fails', args: '["one"]', queue: 'bad', attempts: 0, lockedBy: null });
      expect(Math.abs(copy.runAt - Date.now())).to.be.below(30_000);
      expect(await store.findCompleted('900020')).to.not.equal(null);

      const recent = await cli('retry', '--failed', '--since', '3600', '--json');
      expectOk(recent);
      const out = JSON.parse(recent.stdout) as { retried: Array<{ id: string; newId: string }> };
      expect(out.retried.map((o) => o.id)).to.deep.equal(['900020']);
      const all = await cli('retry', '--failed', '--name', 'record', '--json');
      expect((JSON.parse(all.stdout) as typeof out).retried.map((o) => o.id)).to.deep.equal(['900021']);
      expect(await snapshot()).to.deep.equal({ tasks: before.tasks + 3, completed: before.completed });
    });

    it('delete: pending and finished tasks; a RUNNING one only with --force; any bad id deletes nothing', async () => {
      await reset();
      const a = await addPending('record', [1]);
      const b = await addPending('record', [2]);
      await finished(900_030, { ageMs: 60_000 });
      const running = await claimOne('record');

      const before = await snapshot();
      const [refusedRunning, refusedUnknown, badId] = await Promise.all([
        cli('delete', '900030', running.id),
        cli('delete', '900030', '777777'),
        everyCheck ? cli('delete', '0') : null,
      ]);
      expectUsage(refusedRunning, new RegExp(`#${running.id} is RUNNING .*--force`));
      expectUsage(refusedUnknown, /No task with id 777777/);
      if (badId) expectUsage(badId, /Invalid task id "0"/);
      expect(await snapshot()).to.deep.equal(before);

      const other = running.id === a.id ? b : a;
      const del = await cli('delete', '900030', other.id);
      expectOk(del);
      expect(del.stdout).to.equal(`Deleted record #900030 (was successful)\nDeleted record #${other.id} (was ready)\n`);
      const forced = await cli('delete', running.id, '--force', '--json');
      expectOk(forced);
      expect(JSON.parse(forced.stdout)).to.deep.equal({ deleted: [{ id: running.id, name: 'record', status: 'RUNNING' }] });
      expect(await snapshot()).to.deep.equal({ tasks: 0, completed: 0 });
    });

    it('cancel: READY becomes FAILED, RUNNING gets a request, finished ones are reported; an unknown id cancels nothing', async () => {
      await reset();
      const a = await addPending('record', [1]);
      const b = await addPending('record', [2]);
      await finished(900_040, { ageMs: 60_000 });
      const running = await claimOne('record');
      const ready = running.id === a.id ? b : a;

      const refused = await cli('cancel', ready.id, '999999');
      expectUsage(refused, /No task with id 999999/);
      expect((await store.findPending(ready.id))!.lockedBy).to.equal(null);

      const r = await cli('cancel', ready.id, running.id, '900040', '--json');
      expectOk(r);
      expect(JSON.parse(r.stdout)).to.deep.equal({
        results: [
          { id: ready.id, name: 'record', status: 'FAILED', outcome: 'cancelled' },
          { id: running.id, name: 'record', status: 'RUNNING', outcome: 'requested' },
          { id: '900040', name: 'record', status: 'SUCCESSFUL', outcome: 'finished' },
        ],
      });
      const done = (await store.findCompleted(ready.id))!;
      expect(done.failedAt).to.not.equal(null);
      expect(done.errors[0]!.class).to.equal('CancelledError');
      expect((await store.findPending(running.id))!.cancelRequested).to.equal(true);

      const again = await cli('cancel', ready.id);
      expectOk(again);
      expect(again.stdout).to.equal(`record #${ready.id}: already finished (failed); left as it is\n`);
    });

    it('prune-results: dry run, retention, queues; pending tasks are never touched; bad --days exit 2', async () => {
      await reset();
      const pending = await addPending('record', [1], { runAt: Date.now() - 90 * DAY });
      for (let i = 0; i < 30; i++) await finished(900_100 + i, { ageMs: 40 * DAY, queue: i % 2 ? 'a' : 'b' });
      await finished(900_200, { ageMs: 40 * DAY, failed: true });
      await finished(900_201, { ageMs: 100 * DAY, failed: true });
      await finished(900_202, { ageMs: DAY });

      if (everyCheck) {
        const [negative, notNumber, badFailed, badBatch] = await Promise.all([
          cli('prune-results', '--days', '-1'),
          cli('prune-results', '--days', 'abc'),
          cli('prune-results', '--failed-days', '-3'),
          cli('prune-results', '--batch-size', '0'),
        ]);
        expectUsage(negative, /Invalid --days: "-1" — expected a number of days >= 0/);
        expectUsage(notNumber, /Invalid --days: "abc"/);
        expectUsage(badFailed, /Invalid --failed-days: "-3"/);
        expectUsage(badBatch, /Invalid --batch-size: "0"/);
      }
      const dry = await cli('prune-results', '--dry-run');
      expectOk(dry);
      expect(dry.stdout).to.equal('Would delete 32 task result(s)\n');
      expect(await count('completed')).to.equal(33);

      const onlyA = await cli('prune-results', '--queue', 'a', '--batch-size', '4');
      expectOk(onlyA);
      expect(onlyA.stdout).to.equal('Deleted 15 task result(s)\n');
      const keepFailed = await cli('prune-results', '--failed-days', '60', '--json');
      expectOk(keepFailed);
      expect(JSON.parse(keepFailed.stdout)).to.include({ dryRun: false, tasks: 16 });
      expect(await count('completed')).to.equal(2);
      const rest = await cli('prune-results', '--days', '30', '--failed-days', '0');
      expect(rest.stdout).to.equal('Deleted 1 task result(s)\n');
      expect(await store.findCompleted('900202')).to.not.equal(null);
      expect(await count('tasks')).to.equal(1);
      expect((await store.findPending(pending.id))!.name).to.equal('record');
    });
  });
}

/**
 * Scenario PGBOUNCER-01 (docs/scenarios.md): bgtasks on PostgreSQL through Debian's PgBouncer in
 * transaction mode, started by the test in front of a private server: migrate, enqueue and two
 * spawned workers all go through it; every task runs once. LISTEN cannot work through a
 * transaction pooler (the session it was sent on is handed to other clients), so an idle worker
 * must still find new tasks by polling; the worker says so once (PGBOUNCER-02), and with `listenUrl`
 * set to the server itself it listens there and wakes at once. Skipped with a printed notice without PostgreSQL's server
 * binaries or /usr/sbin/pgbouncer.
 */
import { expect } from 'chai';
import { killLeftovers, makeProject, runCli, spawnNode, startCli, TSX_LOADER, type Project, type Spawned } from '../helpers/project.js';
import { pgbouncerAvailable, startPgbouncer, type Pgbouncer } from '../helpers/pgbouncer.js';
import { leftovers, postgresAvailable, skipUnless, startPrivatePostgres, type PrivatePostgres } from '../helpers/private-servers.js';
import { pollUntil } from '../helpers/processes.js';
import { BULK_ENQUEUE, duplicates, EFFECT_TASKS, expectRunning, outputOf, runsPerTask } from './fixtures.js';

const PREFIX = 'pb_';

describe('scenarios through pgbouncer in transaction mode [postgres]', function () {
  this.timeout(120_000);
  let server: PrivatePostgres | undefined;
  let bouncer: Pgbouncer | undefined;
  let project: Project;
  let env: Record<string, string>;
  const children: Spawned[] = [];
  const count = async (sql: string, database = 'test') => Number((await server!.query(sql, [], database))[0]!.n);
  const enqueue = async (from: number, n: number) => {
    const r = await spawnNode(['--import', TSX_LOADER, 'bulk.ts', String(from), String(n)], project.dir, env).exited;
    expect(r.code, r.stderr + r.stdout).to.equal(0);
  };

  before(async function () {
    this.timeout(120_000);
    skipUnless(this, postgresAvailable(), 'PGBOUNCER-01 (it needs a private PostgreSQL)');
    skipUnless(this, pgbouncerAvailable(), 'PGBOUNCER-01');
    server = await startPrivatePostgres();
    // Fewer server connections than the two workers' pools could open: they must take turns.
    bouncer = await startPgbouncer({ upstreamPort: server.port, poolMode: 'transaction', settings: { default_pool_size: 4 } });
    await server.query('CREATE DATABASE fx', [], 'postgres');
    await server.query('CREATE TABLE effects (n int NOT NULL, pid int NOT NULL)', [], 'fx');
    project = makeProject({ 'tasks.ts': EFFECT_TASKS, 'bulk.ts': BULK_ENQUEUE }, ['knex']);
    env = {
      BGTASKS_DATABASE_URL: bouncer.url,
      BGTASKS_TABLE_PREFIX: PREFIX,
      // The effects go straight to the server: only bgtasks' own traffic is under test.
      EFFECTS_URL: server.url.replace(/\/test$/, '/fx'),
      EFFECTS_TABLE: 'effects',
    };
    const m = await runCli(['migrate'], project.dir, env);
    expect(m.code, m.stderr + m.stdout).to.equal(0);
  });
  after(async function () {
    this.timeout(60_000);
    await killLeftovers(children);
    project?.remove();
    await bouncer?.destroy();
    await server?.destroy();
    expect(leftovers()).to.deep.equal([]);
  });

  it('PGBOUNCER-01: migrate, enqueue and two workers through it: every task once; an idle worker still finds new tasks by polling', async function () {
    this.timeout(120_000);
    const total = 300;
    await enqueue(1, total);
    const sleep = 2;
    const ws = [1, 2].map(() => {
      const s = startCli(['process-tasks', '--no-startup-delay', '--sleep', String(sleep), '--concurrency', '4'], project.dir, env);
      children.push(s);
      return s;
    });
    await pollUntil(async () => (await count(`SELECT count(*) AS n FROM ${PREFIX}completed_tasks`)) === total, `${total} tasks to finish`, 60_000, 100);

    // Idle workers now; a task enqueued by another process must be found by a poll.
    await enqueue(total + 1, 1);
    const enqueuedAt = Date.now();
    await pollUntil(async () => (await count('SELECT count(*) AS n FROM effects', 'fx')) === total + 1, 'the late task to run', 15_000, 20);
    const pickupMs = Date.now() - enqueuedAt;

    for (const w of ws) expectRunning(w, 'a worker');
    for (const w of ws) w.child.kill('SIGTERM');
    for (const w of ws) expect((await w.exited).code, outputOf(w)).to.equal(0);

    const runs = runsPerTask(await server!.query('SELECT n FROM effects', [], 'fx'));
    const failed = await count(`SELECT count(*) AS n FROM ${PREFIX}completed_tasks WHERE failed_at IS NOT NULL`);
    const listenNotes = ws.flatMap((w) => w.stdout().split('\n').filter((l) => /listen/i.test(l)));
    process.stdout.write(`      a task enqueued beside idle workers ran ${pickupMs} ms after its enqueue returned (poll every ${sleep} s); worker lines about listening: ${listenNotes.length === 0 ? 'none' : listenNotes.join(' | ')}\n`);
    expect(runs.size).to.equal(total + 1);
    expect(duplicates(runs), 'tasks that ran more than once').to.deep.equal([]);
    expect(failed, 'failed tasks').to.equal(0);
    expect(await count(`SELECT count(*) AS n FROM ${PREFIX}tasks`)).to.equal(0);
    // Found by a poll: within one sleep of the enqueue, plus a claim and this machine's slack.
    expect(pickupMs).to.be.lessThan(sleep * 1000 + 3_000);
    const pools = await bouncer!.admin('SHOW POOLS');
    expect(pools.find((p) => p.database === 'test'), 'the pool bgtasks used').to.include({ pool_mode: 'transaction' });
  });

  it('PGBOUNCER-02: a worker says once that notifications do not arrive; with listenUrl on the server itself, a task enqueued through PgBouncer starts at once', async function () {
    this.timeout(90_000);
    const sleep = 10;
    const NOTICE = /notifications do not arrive \(a pooler in transaction mode\?\); polling every 10 s \(--sleep\); set listenUrl to a direct connection/g;
    const start = (extra: Record<string, string> = {}) => {
      const s = startCli(['process-tasks', '--no-startup-delay', '--sleep', String(sleep), '--concurrency', '2'], project.dir, { ...env, ...extra });
      children.push(s);
      return s;
    };
    const effects = () => count('SELECT count(*) AS n FROM effects', 'fx');

    // Without listenUrl: the self-test notification never arrives through the pooler.
    const pooled = start();
    await pollUntil(() => (pooled.stdout().match(NOTICE) ?? []).length > 0, 'the notice that notifications do not arrive', 30_000, 50);
    pooled.child.kill('SIGTERM');
    const p = await pooled.exited;
    expect(p.code, outputOf(pooled)).to.equal(0);
    expect((p.stdout.match(NOTICE) ?? []).length, 'notices').to.equal(1);

    // With listenUrl: LISTEN on a direct connection; NOTIFY from PgBouncer's sessions reaches it.
    const direct = start({ BGTASKS_LISTEN_URL: server!.url });
    const listening = async () =>
      Number((await server!.query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'test' AND query LIKE 'LISTEN %' AND state = 'idle'"))[0]!.n) === 1;
    await pollUntil(listening, 'the worker to LISTEN on its direct connection', 30_000, 50);
    const before = await effects();
    await enqueue(5001, 1);
    const enqueuedAt = Date.now();
    await pollUntil(async () => (await effects()) === before + 1, 'the task to run', 15_000, 20);
    const pickupMs = Date.now() - enqueuedAt;
    expectRunning(direct, 'the worker with listenUrl');
    direct.child.kill('SIGTERM');
    const d = await direct.exited;
    expect(d.code, outputOf(direct)).to.equal(0);
    process.stdout.write(`      with listenUrl, a task enqueued through PgBouncer ran ${pickupMs} ms after its enqueue returned (poll every ${sleep} s)\n`);
    expect(d.stdout.match(NOTICE), 'no notice with listenUrl').to.equal(null);
    // Woken by the notification, not by a poll: well under one --sleep.
    expect(pickupMs).to.be.lessThan(3_000);
  });
});

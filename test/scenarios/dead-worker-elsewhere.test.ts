/**
 * Scenario DEADWORKER-02 (docs/scenarios.md) on PostgreSQL and MariaDB, with the default lease
 * (60 s), heartbeat (10 s), poll (5 s) and livenessTimeout (12 s): dead workers found in seconds
 * by a worker on another host, which cannot ask the kernel about their processes.
 *
 * Three workers run on hosts of their own (each in a UTS namespace whose host name is `dw2-far-N`,
 * so the registry says they run on three other machines than the survivor, and none can ask the
 * kernel about another's process): one holds four tasks and is
 * killed with SIGKILL; one runs a task that blocks its event loop for longer than the
 * livenessTimeout; one runs a task that waits on its signal, and is cut off from the database (a
 * proxy in front of the server drops every byte both ways). The survivor, on this host, recovers
 * the killed worker's tasks and the cut-off worker's task long before their lease would run out;
 * the blocked worker keeps beating from its liveness thread and keeps its task; the cut-off
 * worker stops its own attempt before the survivor starts it again.
 *
 * Each run of the scenario tasks appends a line to a file of the project (time, worker, what).
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { background, type TaskContext } from '../../core/index.js';
import { DEFAULT_LIVENESS_TIMEOUT, livenessFenceMs } from '../../core/policy/liveness.js';
import { contract } from '../helpers/databases.js';
import { hostNamesAvailable, killLeftovers, makeProject, startCli, startCliOnHost, type Project, type Spawned } from '../helpers/project.js';
import { pollUntil, skipUnless } from '../helpers/processes.js';
import { TcpProxy, throughProxy } from '../helpers/tcp-proxy.js';
import { expectRunning, outputOf } from './fixtures.js';

const TASKS = `
import { appendFileSync } from 'node:fs';
import { background } from 'bgtasks';
const note = (what: string) => appendFileSync(process.env.RUNS_FILE!, Date.now() + ' ' + process.env.WORKER_LABEL + ' ' + what + '\\n');
export const hold = background({ name: 'dw2.hold', queue: 'dw2-hold' }, async function hold(n: number) {
  await new Promise((r) => setTimeout(r, Number(process.env.HOLD_MS ?? 0)));
  return n;
});
export const block = background({ name: 'dw2.block', queue: 'dw2-block' }, function block(ms: number) {
  // Blocks the event loop: no lease heartbeat, no registry heartbeat, until it returns.
  note('block-start');
  const end = Date.now() + ms;
  while (Date.now() < end) {}
  note('block-end');
  return ms;
});
export const watch = background({ name: 'dw2.watch', queue: 'dw2-watch', context: true }, async function watch(ctx, n: number) {
  note('watch-start ' + ctx.attempt);
  const aborted = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), Number(process.env.WATCH_MS ?? 0));
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  if (aborted) {
    // Stops as a cooperative task does: by rejecting with its signal's reason.
    note('watch-abort ' + ctx.attempt + ' ' + (ctx.signal.reason as Error)?.name);
    throw ctx.signal.reason;
  }
  note('watch-end ' + ctx.attempt);
  return n;
});
`;

// The same definitions in this process, only to enqueue them.
const hold = background({ name: 'dw2.hold', queue: 'dw2-hold' }, async function hold(n: number) {
  return n;
});
const block = background({ name: 'dw2.block', queue: 'dw2-block' }, function block(ms: number) {
  return ms;
});
const watch = background({ name: 'dw2.watch', queue: 'dw2-watch', context: true }, async function watch(_ctx: TaskContext, n: number) {
  return n;
});

/** The host names of the victim, the blocker and the worker to be cut. */
const FAR = ['dw2-far-1', 'dw2-far-2', 'dw2-far-3'] as const;
const HOLDS = 4;
const TIMEOUT_MS = DEFAULT_LIVENESS_TIMEOUT * 1000;
/** Longer than the livenessTimeout by more than a recovery pass (5 s), from before the kill on. */
const BLOCK_MS = 26_000;
const RECOVERY_BOUND_MS = 20_000;

interface Note {
  at: number;
  worker: string;
  what: string;
}

contract('DEADWORKER-02: dead workers found in seconds by workers on other hosts', (db) => {
  if (db.name === 'sqlite') return;
  let project: Project;
  let proxy: TcpProxy;
  const children: Spawned[] = [];
  before(async function () {
    skipUnless(this, hostNamesAvailable(), `DEADWORKER-02 on ${db.name} (workers with a host name of their own)`);
    project = makeProject({ 'tasks.ts': TASKS });
    const u = new URL(db.url);
    proxy = new TcpProxy(u.hostname, Number(u.port || (db.name === 'mysql' ? 3306 : 5432)));
    await proxy.start();
  });
  afterEach(async function () {
    this.timeout(30_000);
    await killLeftovers(children);
  });
  after(async () => {
    await proxy?.stop();
    project?.remove();
  });

  const runsFile = () => path.join(project.dir, 'runs.txt');
  const notes = (): Note[] =>
    existsSync(runsFile())
      ? readFileSync(runsFile(), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const [at, worker, ...what] = l.split(' ');
            return { at: Number(at), worker: worker!, what: what.join(' ') };
          })
      : [];
  /** A worker with the default lockTimeout, heartbeatInterval, sleep and livenessTimeout. */
  const worker = (id: string, queues: string, o: { host?: string; url?: string; env?: Record<string, string> } = {}) => {
    const args = ['process-tasks', '--no-startup-delay', '--worker-id', id, '--queue', queues, '--concurrency', String(HOLDS)];
    const env = { BGTASKS_DATABASE_URL: o.url ?? db.url, BGTASKS_TABLE_PREFIX: db.settings.tablePrefix, RUNS_FILE: runsFile(), WORKER_LABEL: id, ...o.env };
    const s = o.host ? startCliOnHost(o.host, args, project.dir, env) : startCli(args, project.dir, env);
    children.push(s);
    return s;
  };
  const t = () => db.store.tables;
  const row = async (id: string) =>
    (await db.store.knex(t().workers).where('id', id).first()) as { host: string; heartbeat_at: unknown; alive_at: unknown; liveness_ms: unknown } | undefined;
  const lockedBy = async (id: string) => Number(((await db.store.knex(t().tasks).where('locked_by', id).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);
  const beating = async (id: string) => {
    const r = await row(id);
    return r !== undefined && r.alive_at !== null;
  };

  it(`a worker on another host killed with SIGKILL: its ${HOLDS} tasks run again within ${RECOVERY_BOUND_MS / 1000} s (lease 60 s); a worker cut off stops its task before it runs again; a worker blocked for ${BLOCK_MS / 1000} s keeps its task`, async function () {
    this.timeout(150_000);
    await db.reset();
    const started = Date.now();
    const victim = worker('dw2-victim', 'dw2-hold', { host: FAR[0], env: { HOLD_MS: '120000' } });
    const blocker = worker('dw2-blocker', 'dw2-block', { host: FAR[1] });
    const cut = worker('dw2-cut', 'dw2-watch', { host: FAR[2], url: throughProxy(db.url, proxy.port), env: { WATCH_MS: '120000' } });
    const holds: Array<{ id: string }> = [];
    for (let n = 1; n <= HOLDS; n++) holds.push(await hold(n));
    const watched = await watch(1);
    await pollUntil(async () => (await lockedBy('dw2-victim')) === HOLDS && (await lockedBy('dw2-cut')) === 1, 'the victim and the worker to be cut to claim their tasks', 30_000, 50);
    // Only the liveness beat lets another host find them dead early: their threads must be up.
    for (const id of ['dw2-victim', 'dw2-blocker', 'dw2-cut']) await pollUntil(() => beating(id), `${id}'s first liveness beat`, 30_000, 50);
    for (const [i, id] of ['dw2-victim', 'dw2-blocker', 'dw2-cut'].entries()) expect((await row(id))!.host).to.equal(FAR[i]);
    const survivor = worker('dw2-survivor', 'dw2-hold,dw2-watch');
    // The blocker blocks from now until after the survivor has judged it, beyond its timeout.
    const blockRef = await block(BLOCK_MS);
    await pollUntil(() => beating('dw2-survivor'), "the survivor's first liveness beat", 30_000, 50);
    const survivorBeatsFrom = Date.now();
    expect(FAR, 'the survivor runs on another host than the others').to.not.include((await row('dw2-survivor'))!.host);
    // A worker judges silence only once its own beats have landed for a whole livenessTimeout:
    // kill when the survivor can judge, as a survivor that has run for a while would.
    await pollUntil(() => Date.now() - survivorBeatsFrom >= TIMEOUT_MS + 1500, 'the survivor to beat for a whole livenessTimeout', 30_000, 100);
    expect(notes().some((r) => r.worker === 'dw2-blocker' && r.what === 'block-start'), 'the blocker is blocking').to.equal(true);

    victim.child.kill('SIGKILL');
    proxy.blackHole();
    const killedAt = Date.now();
    await victim.exited;

    // When each task is seen finished (polled every 100 ms), and how the blocker's row looked.
    const doneAfter = new Map<string, number>();
    let blockerStaleMs = 0;
    let blockerAliveAgeMax = 0;
    let lastPoll = Date.now();
    const ids = [...holds.map((r) => r.id), watched.id];
    await pollUntil(
      async () => {
        const done = (await db.store.knex(t().completed).select('task_id').whereIn('task_id', ids)) as Array<{ task_id: unknown }>;
        for (const r of done) if (!doneAfter.has(String(r.task_id))) doneAfter.set(String(r.task_id), Date.now() - killedAt);
        const b = await row('dw2-blocker');
        const now = Date.now();
        const blocking = notes().some((r) => r.worker === 'dw2-blocker' && r.what === 'block-start') && !notes().some((r) => r.worker === 'dw2-blocker' && r.what === 'block-end');
        if (b && blocking) {
          // Its registry heartbeat (from its blocked loop) older than the timeout, while the survivor judges.
          if (now - Number(b.heartbeat_at) > TIMEOUT_MS) blockerStaleMs += now - lastPoll;
          blockerAliveAgeMax = Math.max(blockerAliveAgeMax, now - Number(b.alive_at));
        }
        lastPoll = now;
        return doneAfter.size === ids.length && (await db.store.findCompleted(blockRef.id)) !== null;
      },
      'the killed and the cut-off worker’s tasks to run again, and the blocked task to finish',
      60_000,
      100,
    );
    // Heal: the black-holed connections are reset, so the cut-off worker reconnects at once.
    proxy.cut();
    proxy.restore();
    const healedAt = Date.now();
    await pollUntil(async () => Number((await row('dw2-cut'))!.alive_at) > healedAt, 'the cut-off worker to beat again', 30_000, 100);
    const rejoinMs = Date.now() - healedAt;
    for (const [w, what] of [
      [survivor, 'the survivor'],
      [blocker, 'the blocker'],
      [cut, 'the cut-off worker'],
    ] as const)
      expectRunning(w, what);

    const holdTimes = holds.map((r) => doneAfter.get(r.id)!).sort((a, b) => a - b);
    const p50 = (holdTimes[HOLDS / 2 - 1]! + holdTimes[HOLDS / 2]!) / 2;
    const ran = notes();
    const abort = ran.find((r) => r.worker === 'dw2-cut' && r.what.startsWith('watch-abort'));
    const rerun = ran.find((r) => r.worker === 'dw2-survivor' && r.what.startsWith('watch-start'));
    process.stdout.write(
      `      ${db.name} DEADWORKER-02: the killed worker's ${HOLDS} tasks ran again ${holdTimes.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s after the kill (p50 ${(p50 / 1000).toFixed(1)} s); ` +
        `the cut-off worker stopped its task ${abort ? ((abort.at - killedAt) / 1000).toFixed(1) : '?'} s after the cut, the survivor started it again ${rerun ? ((rerun.at - killedAt) / 1000).toFixed(1) : '?'} s after it; ` +
        `the blocker's registry heartbeat was older than ${TIMEOUT_MS / 1000} s for ${(blockerStaleMs / 1000).toFixed(1)} s while its liveness beat was at most ${(blockerAliveAgeMax / 1000).toFixed(1)} s old; ` +
        `the cut-off worker beat again ${rejoinMs} ms after the heal; ${((Date.now() - started) / 1000).toFixed(0)} s in all\n`,
    );

    // Recovery of the killed worker's tasks: within seconds, on another host, long before the lease.
    expect(p50, 'p50 recovery (ms)').to.be.at.most(RECOVERY_BOUND_MS);
    expect(holdTimes[HOLDS - 1], 'slowest recovery (ms): well before the 60 s lease').to.be.lessThan(40_000);
    for (const r of holds) {
      const c = (await db.store.findCompleted(r.id))!;
      expect({ failed: c.failedAt, attempts: c.attempts, worker: c.workerId }, outputOf(survivor)).to.deep.equal({ failed: null, attempts: 2, worker: 'dw2-survivor' });
      expect(c.errors[0]!.message).to.match(/^worker dw2-victim on dw2-far-1 is silent: no liveness beat for [\d.]+ s, over its livenessTimeout of 12 s/);
    }
    // The cut-off worker: it stopped its attempt (the task saw its signal abort) before the
    // survivor started the task again, and did not run it to its end: no duplicate execution.
    expect(abort, `the cut-off worker's attempt was stopped:\n${outputOf(cut)}`).to.not.equal(undefined);
    expect(abort!.what).to.equal('watch-abort 1 WorkerStoppedError');
    expect(abort!.at - killedAt, 'the fence comes after two thirds of the timeout').to.be.at.least(livenessFenceMs(TIMEOUT_MS) - 2500);
    expect(rerun, 'the survivor ran the task again').to.not.equal(undefined);
    expect(rerun!.what).to.equal('watch-start 2');
    expect(rerun!.at, 'the cut-off worker stopped before the task started again').to.be.greaterThan(abort!.at);
    expect(ran.filter((r) => r.what.startsWith('watch-end')).map((r) => r.worker)).to.deep.equal(['dw2-survivor']);
    expect(outputOf(cut)).to.match(/liveness beats have not reached the database/);
    const w = (await db.store.findCompleted(watched.id))!;
    expect({ failed: w.failedAt, attempts: w.attempts, worker: w.workerId }).to.deep.equal({ failed: null, attempts: 2, worker: 'dw2-survivor' });
    expect(w.errors[0]!.message).to.match(/^worker dw2-cut on dw2-far-3 is silent/);
    // Alive but blocked: its registry heartbeat stopped for longer than the timeout while a
    // judging survivor passed (every 5 s), yet its liveness beat went on, and its task ran once.
    expect(blockerStaleMs, "time the blocker's registry heartbeat was older than the timeout").to.be.at.least(5000);
    expect(blockerAliveAgeMax, "the blocker's liveness beat, while it blocked (ms)").to.be.lessThan(livenessFenceMs(TIMEOUT_MS) / 2);
    const b = (await db.store.findCompleted(blockRef.id))!;
    expect({ attempts: b.attempts, failedAt: b.failedAt, errors: b.errors, worker: b.workerId }).to.deep.equal({ attempts: 1, failedAt: null, errors: [], worker: 'dw2-blocker' });
    expect(ran.filter((r) => r.what === 'block-start')).to.have.length(1);
    expect(outputOf(survivor)).to.not.match(/dw2-blocker/);

    for (const x of [survivor, blocker, cut]) x.child.kill('SIGTERM');
    for (const x of [survivor, blocker, cut]) expect((await x.exited).code, outputOf(x)).to.equal(0);
  });
});

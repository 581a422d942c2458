/**
 * Scenario DEADWORKER-01 (docs/scenarios.md) on every database, with the default lease (60 s),
 * heartbeat (10 s) and poll (5 s): a spawned worker holding four tasks is killed with SIGKILL, and
 * another worker on the same machine recovers and runs them within seconds, long before their
 * lease would have run out. Beside it, a worker whose task blocks its event loop for 20 s (so its
 * registry heartbeat goes stale) is alive, and its task is not recovered: it runs exactly once.
 */
import { expect } from 'chai';
import { background } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { killLeftovers, makeProject, startCli, type Project, type Spawned } from '../helpers/project.js';
import { pollUntil } from '../helpers/processes.js';
import { expectRunning, outputOf } from './fixtures.js';

const TASKS = `
import { background } from 'bgtasks';
export const hold = background({ name: 'dw.hold', queue: 'dw-hold' }, async function hold(n: number) {
  await new Promise((r) => setTimeout(r, Number(process.env.HOLD_MS ?? 50)));
  return n;
});
export const block = background({ name: 'dw.block', queue: 'dw-block' }, function block(ms: number) {
  // Blocks the event loop: no heartbeat, no registry beat, until it returns.
  const end = Date.now() + ms;
  while (Date.now() < end) {}
  return ms;
});
`;

// The same definitions in this process, only to enqueue them.
const hold = background({ name: 'dw.hold', queue: 'dw-hold' }, async function hold(n: number) {
  return n;
});
const block = background({ name: 'dw.block', queue: 'dw-block' }, function block(ms: number) {
  return ms;
});

const HOLDS = 4;
const BLOCK_MS = 20_000;
const RECOVERY_BOUND_MS = 20_000;

contract('DEADWORKER-01: dead workers found in seconds', (db) => {
  let project: Project;
  const children: Spawned[] = [];
  before(() => {
    project = makeProject({ 'tasks.ts': TASKS });
  });
  afterEach(async function () {
    this.timeout(30_000);
    await killLeftovers(children);
  });
  after(() => project?.remove());

  /** A worker with the default lockTimeout, heartbeatInterval and sleep. */
  const worker = (id: string, queue: string, env: Record<string, string> = {}) => {
    const s = startCli(['process-tasks', '--no-startup-delay', '--worker-id', id, '--queue', queue, '--concurrency', String(HOLDS)], project.dir, {
      BGTASKS_DATABASE_URL: db.url,
      BGTASKS_TABLE_PREFIX: db.settings.tablePrefix,
      ...env,
    });
    children.push(s);
    return s;
  };
  const t = () => db.store.tables;
  const registered = async (id: string) => (await db.store.knex(t().workers).where('id', id).first()) !== undefined;
  const lockedBy = async (id: string) => Number(((await db.store.knex(t().tasks).where('locked_by', id).count({ n: '*' })) as Array<{ n: unknown }>)[0]!.n);

  it(`a worker killed with SIGKILL: its ${HOLDS} tasks run again within ${RECOVERY_BOUND_MS / 1000} s (lease 60 s); a worker blocked for ${BLOCK_MS / 1000} s keeps its task`, async function () {
    this.timeout(90_000);
    await db.reset();
    // The victim holds its tasks for a minute; the survivor's copies return at once.
    const victim = worker('dw-victim', 'dw-hold', { HOLD_MS: '120000' });
    const refs: Array<{ id: string }> = [];
    for (let n = 1; n <= HOLDS; n++) refs.push(await hold(n));
    await pollUntil(async () => (await lockedBy('dw-victim')) === HOLDS, 'the victim to claim every task', 30_000, 50);
    const survivor = worker('dw-survivor', 'dw-hold');
    const blocker = worker('dw-blocker', 'dw-block');
    await pollUntil(async () => (await registered('dw-survivor')) && (await registered('dw-blocker')), 'the survivor and the blocker to register', 30_000, 50);
    const blockRef = await block(BLOCK_MS);
    await pollUntil(async () => (await lockedBy('dw-blocker')) === 1, 'the blocker to claim its task', 30_000, 50);
    const blockedAt = Date.now();

    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    // When each task is seen finished (polled every 100 ms), and whether the blocker's row went stale.
    const doneAfter = new Map<string, number>();
    let blockerStaleSeen = false;
    await pollUntil(
      async () => {
        const done = (await db.store.knex(t().completed).select('task_id').whereIn('task_id', refs.map((r) => r.id))) as Array<{ task_id: unknown }>;
        for (const r of done) if (!doneAfter.has(String(r.task_id))) doneAfter.set(String(r.task_id), Date.now() - killedAt);
        const row = (await db.store.knex(t().workers).where('id', 'dw-blocker').first()) as { heartbeat_at: unknown } | undefined;
        if (row && Date.now() - Number(row.heartbeat_at) > 9000 && Date.now() - blockedAt < BLOCK_MS) blockerStaleSeen = true;
        return doneAfter.size === HOLDS;
      },
      'the killed worker’s tasks to run again',
      55_000,
      100,
    );
    await pollUntil(async () => (await db.store.findCompleted(blockRef.id)) !== null, 'the blocked task to finish', 40_000, 100);
    expectRunning(survivor, 'the survivor');
    expectRunning(blocker, 'the blocker');

    const times = [...doneAfter.values()].sort((a, b) => a - b);
    const p50 = (times[HOLDS / 2 - 1]! + times[HOLDS / 2]!) / 2;
    process.stdout.write(`      ${db.name} DEADWORKER-01: recovered and ran ${HOLDS} tasks ${times.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s after the kill (p50 ${(p50 / 1000).toFixed(1)} s); blocker's registry row seen stale: ${blockerStaleSeen}\n`);
    expect(p50, 'p50 recovery (ms)').to.be.at.most(RECOVERY_BOUND_MS);
    expect(times[HOLDS - 1], 'slowest recovery (ms): well before the 60 s lease').to.be.lessThan(40_000);
    for (const r of refs) {
      const c = (await db.store.findCompleted(r.id))!;
      expect(c.failedAt, outputOf(survivor)).to.equal(null);
      expect(c.attempts, 'the killed run and the recovered one').to.equal(2);
      expect(c.errors[0]!.message).to.match(/worker dw-victim is gone \(process \d+ /);
    }
    // Alive but blocked: its registry heartbeat went stale, yet its task ran once, untouched.
    expect(blockerStaleSeen, "the blocker's registry row went stale while it blocked").to.equal(true);
    const b = (await db.store.findCompleted(blockRef.id))!;
    expect({ attempts: b.attempts, failedAt: b.failedAt, errors: b.errors }).to.deep.equal({ attempts: 1, failedAt: null, errors: [] });
    expect(outputOf(survivor)).to.not.match(/dw-blocker/);

    for (const w of [survivor, blocker]) w.child.kill('SIGTERM');
    for (const w of [survivor, blocker]) expect((await w.exited).code, outputOf(w)).to.equal(0);
  });
});

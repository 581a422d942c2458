/**
 * The finding functions (`listTasks`, `createdBy`, `failedTasks`, `succeededTasks`) check their
 * filter before any query, on every database: a bad value is a ValidationError naming it and what
 * was expected, never the database's own error with the SQL, and never a silent match of every
 * task or of none.
 */
import { expect } from 'chai';
import { background, createdBy, failedTasks, listTasks, schedule, succeededTasks, ValidationError } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const job = background({ name: 'query.job' }, function job(tag: string) {
  return tag;
});
const fails = background({ name: 'query.fails', maxAttempts: 1 }, function fails(tag: string) {
  throw new Error(`fails ${tag}`);
});

const T0 = Date.UTC(2031, 5, 1, 12, 0, 0);

async function refused(call: () => Promise<unknown>, message: RegExp): Promise<void> {
  let err: unknown;
  try {
    await call();
  } catch (e) {
    err = e;
  }
  expect(err, String(message)).to.be.instanceOf(ValidationError);
  expect((err as Error).message).to.match(message);
}

contract('finding tasks: the filter is checked before any query', (db) => {
  const { clock, drain } = manualClockSuite(db, T0);

  it('refuses a bad within or finishedWithin (the databases threw their own SQL errors, or matched nothing)', async () => {
    await refused(() => failedTasks('abc' as never), /^Invalid failedTasks\(within\): "abc" — expected a number of seconds > 0/);
    await refused(() => succeededTasks(NaN), /^Invalid succeededTasks\(within\): NaN — expected a number of seconds > 0/);
    await refused(() => failedTasks(-5), /^Invalid failedTasks\(within\): -5 — /);
    await refused(() => succeededTasks(0), /^Invalid succeededTasks\(within\): 0 — /);
    await refused(() => failedTasks(Infinity), /^Invalid failedTasks\(within\): Infinity — /);
    await refused(() => failedTasks(null as never), /^Invalid failedTasks\(within\): null — .*leave it out for any time/);
    await refused(() => listTasks({ finishedWithin: 'abc' as never }), /^Invalid finishedWithin in listTasks\(\) filter: "abc" — expected a number of seconds > 0/);
    await refused(() => listTasks({ finishedWithin: -1 }), /^Invalid finishedWithin in listTasks\(\) filter: -1 — /);
  });

  it('finds tasks finished within a fractional number of seconds (PostgreSQL refused a fractional bound)', async () => {
    await job('old');
    await fails('old');
    await drain();
    clock.advance(10);
    await job('new');
    await fails('new');
    await drain();
    const args = (rs: Array<{ args: unknown[] }>) => rs.map((r) => r.args[0]);
    expect(args(await succeededTasks(5.0001))).to.deep.equal(['new']);
    expect(args(await failedTasks(10.0006))).to.deep.equal(['new', 'old']);
    expect(args(await listTasks({ finishedWithin: 0.0005 }))).to.have.members(['new', 'new']);
  });

  it('refuses an unknown field instead of ignoring it: { status } listed every task', async () => {
    await job('ready');
    await refused(() => listTasks({ status: 'READY' } as never), /^Unknown field "status" in listTasks\(\) filter — expected one of: state, queue, name, creator, finishedWithin, limit \(a status is filtered by "state"\)$/);
    await refused(() => listTasks({ queues: ['mail'] } as never), /^Unknown field "queues" in listTasks\(\) filter/);
    // A shortcut's own fields would be overwritten in silence: refused too.
    await refused(() => failedTasks(60, { state: 'READY' } as never), /^Unknown field "state" in failedTasks\(\) filter — expected one of: queue, name, creator, limit, connection$/);
    await refused(() => succeededTasks(undefined, { finishedWithin: 5 } as never), /^Unknown field "finishedWithin" in succeededTasks\(\) filter/);
    await refused(() => createdBy({ type: 'user', id: 1 }, { creator: { type: 'x', id: 2 } } as never), /^Unknown field "creator" in createdBy\(\) filter/);
    await refused(() => listTasks(5 as never), /^Invalid listTasks\(\) filter: 5 — expected an object/);
  });

  it('refuses values of the wrong type (they matched nothing)', async () => {
    await job('a', schedule(0, { queue: 'mail', creator: { type: 'user', id: 5 } }));
    await refused(() => listTasks({ queue: 5 } as never), /^Invalid queue in listTasks\(\) filter: 5 — expected a queue name, null \(tasks without a queue\), or a list of them$/);
    await refused(() => listTasks({ queue: ['mail', 5] } as never), /^Invalid queue in listTasks\(\) filter: 5 — /);
    await refused(() => listTasks({ name: 5 } as never), /^Invalid name in listTasks\(\) filter: 5 — expected a task name or a list of them$/);
    await refused(() => listTasks({ state: 'ready' as never }), /^Invalid state in listTasks\(\) filter: "ready" — expected one of READY, RUNNING, SUCCESSFUL, FAILED$/);
    await refused(() => listTasks({ limit: 1e20 }), /^Invalid limit in listTasks\(\) filter: 100000000000000000000 — expected an integer from 1 to 9007199254740991$/);
    await refused(() => listTasks({ creator: { type: 'user' } } as never), /^Invalid creator in listTasks\(\) filter: \{"type":"user"\} — expected a \{ type, id \} reference/);
    await refused(() => createdBy({ type: 5 } as never), /^Invalid createdBy\(creator\): \{"type":5\} — expected a \{ type, id \} reference/);
    await refused(() => createdBy(undefined as never), /^Invalid createdBy\(creator\): undefined — /);
    await refused(() => listTasks({}, { conection: 'x' } as never), /^Unknown option "conection" in listTasks\(\) options — expected: connection$/);
    await refused(() => failedTasks(undefined, { connection: 5 } as never), /^Invalid connection in failedTasks\(\) filter: 5 — expected the name of a configured connection$/);
    // The good values still find the task.
    expect((await listTasks({ queue: ['mail'], name: 'query.job', state: 'READY' })).length).to.equal(1);
    expect((await createdBy({ type: 'user', id: '5' }, { queue: 'mail' })).length).to.equal(1);
  });
});

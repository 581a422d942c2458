/**
 * The test modes for applications' own unit tests: `immediate` runs calls inline, `dummy` records
 * them. Neither touches a database (the configured URL points nowhere reachable).
 */
import { expect } from 'chai';
import { background, cancel, configure, dummy, events, getResult, listTasks, resetConfiguration, schedule, TaskNotFoundError, ValidationError, type TaskEventName } from '../../core/index.js';

const sent: unknown[] = [];
const sendMail = background({ name: 'modes.sendMail' }, function sendMail(to: string, opts: { subject: string }) {
  sent.push([to, opts]);
  return `sent to ${to}`;
});
const broken = background({ name: 'modes.broken' }, function broken() {
  throw new Error('smtp down');
});
const mutates = background({ name: 'modes.mutates' }, function mutates(o: { n: number }) {
  return o;
});

/** Every event emitted while `fn` runs, by name. */
async function eventsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const names: TaskEventName[] = ['task:created', 'task:started', 'task:succeeded', 'task:error', 'task:rescheduled', 'task:failed', 'task:snoozed', 'task:finished'];
  const offs = names.map((e) => events.on(e, () => void seen.push(e)));
  try {
    await fn();
  } finally {
    offs.forEach((off) => off());
  }
  return seen;
}

describe('test modes', () => {
  beforeEach(() => {
    sent.length = 0;
    dummy.clear();
  });
  afterEach(() => {
    dummy.clear();
    resetConfiguration();
  });

  describe("mode: 'immediate'", () => {
    beforeEach(() => configure({ mode: 'immediate', database: 'postgres://nobody:secret@127.0.0.1:1/none' }));

    it('runs the task inline at enqueue and returns a finished result', async () => {
      const ref = await sendMail('a@example.com', { subject: 'Hi' });
      expect(sent).to.deep.equal([['a@example.com', { subject: 'Hi' }]]);
      const r = await ref.refresh();
      expect(r).to.include({ status: 'SUCCESSFUL', attempts: 1, name: 'modes.sendMail' });
      expect(r.returnValue).to.equal('sent to a@example.com');
      expect((await getResult(ref.id)).returnValue).to.equal('sent to a@example.com');
    });

    it('records a failure as FAILED (one attempt) instead of throwing at the caller', async () => {
      const ref = await broken();
      const r = await ref.refresh();
      expect(r.status).to.equal('FAILED');
      expect(r.errors[0]!.message).to.equal('smtp down');
    });

    it('passes the task a JSON round trip of the arguments, not the caller’s objects', async () => {
      const arg = { n: 1 };
      const r = await (await mutates(arg)).refresh();
      expect(r.returnValue).to.deep.equal({ n: 1 });
      expect(r.returnValue).not.to.equal(arg);
    });

    it('still validates arguments at enqueue', async () => {
      try {
        await sendMail('x', { subject: new Date() as unknown as string });
        expect.fail('expected a ValidationError');
      } catch (err) {
        expect(err).to.be.instanceOf(ValidationError);
      }
      expect(sent).to.deep.equal([]);
    });

    it('listTasks() lists the tasks run inline (it used to read the database instead)', async () => {
      await sendMail('a@example.com', { subject: 'Hi' });
      await broken();
      const all = await listTasks();
      expect(all.map((r) => [r.name, r.status])).to.have.deep.members([
        ['modes.sendMail', 'SUCCESSFUL'],
        ['modes.broken', 'FAILED'],
      ]);
      expect((await listTasks({ state: 'FAILED' })).map((r) => r.name)).to.deep.equal(['modes.broken']);
    });

    it('emits no events, as documented (enqueue emitted task:created)', async () => {
      const seen = await eventsDuring(async () => {
        await sendMail('a@example.com', { subject: 'Hi' });
        await broken();
        await sendMail.bulk([['b@example.com', { subject: 'B' }]]);
      });
      expect(seen).to.deep.equal([]);
      expect(sent).to.have.length(2);
    });

    it('cancel() of a task that already ran inline says it has finished (it used to reach for the database)', async () => {
      const ref = await sendMail('a@example.com', { subject: 'Hi' });
      try {
        await cancel(ref);
        expect.fail('expected a ValidationError');
      } catch (err) {
        expect(err).to.be.instanceOf(ValidationError);
        expect((err as Error).message).to.match(/has already finished \(SUCCESSFUL\)/);
      }
    });
  });

  describe("mode: 'dummy'", () => {
    beforeEach(() => configure({ mode: 'dummy', database: 'postgres://nobody:secret@127.0.0.1:1/none' }));

    it('records calls without running them; list() shows them READY with their options', async () => {
      await sendMail('a@example.com', { subject: 'Hi' }, schedule(60, { priority: 5, queue: 'mail' }));
      await sendMail.bulk([
        ['b@example.com', { subject: 'B' }],
        ['c@example.com', { subject: 'C' }],
      ]);
      expect(sent).to.deep.equal([]);
      const list = dummy.list();
      expect(list.map((r) => [r.status, r.args[0], r.priority, r.queue])).to.deep.equal([
        ['READY', 'a@example.com', 5, 'mail'],
        ['READY', 'b@example.com', 0, null],
        ['READY', 'c@example.com', 0, null],
      ]);
    });

    it('runAll() drains them through the executor; clear() forgets them', async () => {
      const ref = await sendMail('d@example.com', { subject: 'D' });
      await broken();
      const results = await dummy.runAll();
      expect(results.map((r) => r.status)).to.deep.equal(['SUCCESSFUL', 'FAILED']);
      expect(sent).to.have.length(1);
      expect((await ref.refresh()).returnValue).to.equal('sent to d@example.com');
      expect(await dummy.runAll()).to.deep.equal([]);
      dummy.clear();
      expect(dummy.list()).to.deep.equal([]);
    });

    it('listTasks() filters the recorded tasks by state, queue and name, like the database (it used to read the database instead)', async () => {
      await sendMail('a@example.com', { subject: 'Hi' }, schedule(0, { queue: 'mail' }));
      await sendMail('b@example.com', { subject: 'B' });
      await broken();
      expect((await listTasks()).map((r) => [r.name, r.status, r.args[0] ?? null])).to.deep.equal([
        ['modes.sendMail', 'READY', 'a@example.com'],
        ['modes.sendMail', 'READY', 'b@example.com'],
        ['modes.broken', 'READY', null],
      ]);
      expect((await listTasks({ queue: 'mail' })).map((r) => r.args[0])).to.deep.equal(['a@example.com']);
      expect((await listTasks({ queue: null, name: 'modes.sendMail' })).map((r) => r.args[0])).to.deep.equal(['b@example.com']);
      expect(await listTasks({ state: 'SUCCESSFUL' })).to.deep.equal([]);
      await dummy.runAll();
      expect((await listTasks({ state: ['SUCCESSFUL'] })).map((r) => r.args[0])).to.have.members(['a@example.com', 'b@example.com']);
      expect((await listTasks({ limit: 1 })).length).to.equal(1);
    });

    it('emits no events, as documented, neither at enqueue nor in runAll() (enqueue emitted task:created)', async () => {
      const seen = await eventsDuring(async () => {
        await sendMail('a@example.com', { subject: 'Hi' });
        await sendMail.bulk([['b@example.com', { subject: 'B' }]]);
        await broken();
        await dummy.runAll();
      });
      expect(seen).to.deep.equal([]);
      expect(dummy.list().map((r) => r.status)).to.deep.equal(['SUCCESSFUL', 'SUCCESSFUL', 'FAILED']);
    });

    it('cancel() fails a recorded task at once, so runAll() skips it (it used to reach for the database)', async () => {
      const ref = await sendMail('a@example.com', { subject: 'Hi' });
      const other = await sendMail('b@example.com', { subject: 'B' });
      expect(await cancel(ref)).to.deep.equal({ id: ref.id, status: 'FAILED' });
      const r = await getResult(ref.id);
      expect(r.status).to.equal('FAILED');
      expect(r.errors[0]!.exceptionClass).to.equal('CancelledError');
      expect((await dummy.runAll()).map((x) => x.id)).to.deep.equal([other.id]);
      expect(sent).to.deep.equal([['b@example.com', { subject: 'B' }]]);
      try {
        await cancel('999999');
        expect.fail('expected a TaskNotFoundError');
      } catch (err) {
        expect(err).to.be.instanceOf(TaskNotFoundError);
        expect((err as Error).message).to.equal('No task with id 999999 was recorded in dummy mode');
      }
    });
  });
});

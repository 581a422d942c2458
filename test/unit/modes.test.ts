/**
 * The test modes for applications' own unit tests: `immediate` runs calls inline, `dummy` records
 * them. Neither touches a database (the configured URL points nowhere reachable).
 */
import { expect } from 'chai';
import { background, configure, dummy, getResult, resetConfiguration, schedule, ValidationError } from '../../core/index.js';

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
  });
});

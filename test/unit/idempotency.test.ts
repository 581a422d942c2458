/**
 * Idempotency keys in the test modes' memory store: the same semantics as the database's
 * (test/contract/idempotency.test.ts), so an application's retry logic can be tested without one.
 */
import { expect } from 'chai';
import { background, configure, dummy, idempotencyKey, resetConfiguration, ValidationError } from '../../core/index.js';
import { checkSameCall } from '../../core/policy/idempotency.js';

let runs = 0;
const pay = background({ name: 'idem.memory.pay' }, function pay(orderId: number) {
  runs++;
  return orderId;
});

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('idempotency keys in the test modes', () => {
  beforeEach(() => {
    runs = 0;
    dummy.clear();
  });
  afterEach(() => {
    dummy.clear();
    resetConfiguration();
  });

  it("dummy: the same key twice records one task; another call under the key is refused; bulk follows the same rule", async () => {
    configure({ mode: 'dummy', database: 'postgres://nobody@127.0.0.1:1/none' });
    const first = await pay(1, idempotencyKey('pay:1'));
    const again = await pay(1, idempotencyKey('pay:1'));
    expect(again).to.include({ id: first.id, outcome: 'existing' });
    expect(dummy.list()).to.have.length(1);
    const conflict = await rejects(pay(2, idempotencyKey('pay:1')));
    expect(conflict).to.be.instanceOf(ValidationError);
    expect(conflict.message).to.match(/^idempotencyKey "pay:1" already belongs to task idem\.memory\.pay with other arguments/);
    const bulk = await pay.bulk([[1], [3], [3]], { idempotencyKey: (n) => `pay:${n}` });
    expect(bulk.map((r) => r.outcome)).to.deep.equal(['existing', 'created', 'existing']);
    expect(bulk[0]!.id).to.equal(first.id);
    expect(bulk[2]!.id).to.equal(bulk[1]!.id);
    // All or nothing, as one transaction is.
    await rejects(pay.bulk([[4], [5]], { idempotencyKey: () => 'pay:1' }));
    expect(dummy.list()).to.have.length(2);
    await dummy.runAll();
    expect((await pay(3, idempotencyKey('pay:3'))).outcome, 'a finished record keeps its key').to.equal('existing');
    expect(runs).to.equal(2);
  });

  it('immediate: a retried call with its key does not run again', async () => {
    configure({ mode: 'immediate', database: 'postgres://nobody@127.0.0.1:1/none' });
    const first = await pay(8, idempotencyKey('pay:8'));
    const again = await pay(8, idempotencyKey('pay:8'));
    expect(again).to.include({ id: first.id, outcome: 'existing' });
    expect((await again.refresh()).returnValue).to.equal(8);
    expect(runs).to.equal(1);
  });

  it('checkSameCall: the same name and hash is the same call; anything else names both', () => {
    const stored = { id: '5', name: 'a', hash: 'h1' };
    expect(() => checkSameCall('k', stored, { name: 'a', hash: 'h1' })).to.not.throw();
    expect(() => checkSameCall('k', stored, { name: 'a', hash: 'h2' })).to.throw(ValidationError, 'idempotencyKey "k" already belongs to task a with other arguments (#5); this call of a was not stored');
    expect(() => checkSameCall('k', stored, { name: 'b', hash: 'h1' })).to.throw(ValidationError, 'already belongs to task a (#5); this call of b');
  });
});

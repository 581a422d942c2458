/**
 * When a worker may take chains of a key's tasks (store/claim-plan.ts onlyOnePerKey): only where
 * the one limit on what it claims is the per-key limit of 1.
 */
import { expect } from 'chai';
import { emptyFlowPlan, onlyOnePerKey, type FlowPlan } from '../../core/store/claim.js';
import type { QueueLimits, TaskLimits } from '../../core/policy/flow.js';

const plan = (o: { queues?: Record<string, Partial<QueueLimits>>; tasks?: Record<string, TaskLimits> } = {}): FlowPlan => {
  const p = emptyFlowPlan();
  p.queueLimits = new Map(Object.entries(o.queues ?? {}).map(([k, v]) => [k, { paused: false, concurrency: null, rateLimit: null, ...v }]));
  p.taskLimits = new Map(Object.entries(o.tasks ?? {}));
  return p;
};
const every = { names: ['a', 'b'], queues: null, excludeQueues: null };

describe('onlyOnePerKey: where chains of a key\'s tasks are allowed', () => {
  it('no limit at all, or only per-key limits of 1: yes', () => {
    expect(onlyOnePerKey(plan(), every)).to.equal(true);
    expect(onlyOnePerKey(plan({ tasks: { a: { concurrencyLimit: 1 } } }), every)).to.equal(true);
  });

  it('a per-key limit above 1 of a name it runs: no; of a name it does not run: yes', () => {
    expect(onlyOnePerKey(plan({ tasks: { b: { concurrencyLimit: 2 } } }), every)).to.equal(false);
    expect(onlyOnePerKey(plan({ tasks: { c: { concurrencyLimit: 2 } } }), every)).to.equal(true);
  });

  it('a task concurrency or rate limit of a name it runs: no', () => {
    expect(onlyOnePerKey(plan({ tasks: { a: { concurrency: 3 } } }), every)).to.equal(false);
    expect(onlyOnePerKey(plan({ tasks: { a: { rateLimit: { limit: 5, period: 1 } } } }), every)).to.equal(false);
  });

  it('a queue limit: no where it claims from that queue, yes where it does not', () => {
    const limited = plan({ queues: { mail: { concurrency: 2 } } });
    const rated = plan({ queues: { mail: { rateLimit: { limit: 5, period: 1 } } } });
    expect(onlyOnePerKey(limited, every)).to.equal(false);
    expect(onlyOnePerKey(rated, every)).to.equal(false);
    expect(onlyOnePerKey(limited, { ...every, excludeQueues: ['mail'] })).to.equal(true);
    expect(onlyOnePerKey(limited, { ...every, queues: ['other'] })).to.equal(true);
    expect(onlyOnePerKey(limited, { ...every, queues: ['other', 'mail'] })).to.equal(false);
  });
});

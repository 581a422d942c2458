/**
 * The worker's list of services (core/worker/service.ts): started in order, a failed start
 * stops what started, and a deferred service that fails to start is reported, not swallowed.
 */
import { expect } from 'chai';
import { Services, type Service } from '../../core/worker/service.js';

function service(name: string, trail: string[], failStart = false): Service {
  return {
    start: async () => {
      if (failStart) throw new Error(`${name} cannot start`);
      trail.push(`start ${name}`);
    },
    stop: async () => void trail.push(`stop ${name}`),
  };
}

describe('Services', () => {
  it('starts in order and stops last first', async () => {
    const trail: string[] = [];
    const s = new Services([service('a', trail), [service('b', trail), service('c', trail)]]);
    await s.start();
    await s.stop();
    expect(trail).to.deep.equal(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  it('a deferred service that fails to start is reported, and the others still start and stop', async () => {
    const trail: string[] = [];
    const failures: unknown[] = [];
    const s = new Services([service('a', trail)], [service('listen', trail, true), service('late', trail)], (err) => failures.push(err));
    await s.start();
    await s.startDeferred();
    expect(failures.map((e) => (e as Error).message)).to.deep.equal(['listen cannot start']);
    await s.stop();
    expect(trail).to.deep.equal(['start a', 'start late', 'stop late', 'stop a']);
  });
});

/** core/worker/options.ts: worker option checks that name the CLI flag, queue lists, worker ids. */
import os from 'node:os';
import { expect } from 'chai';
import { autoPrefetch, checkNamesRegistered, checkWorkerOptions, defaultWorkerId, heartbeatIntervalMs, parseQueueList, WORKER_ID_MAX, type WorkerOptions } from '../../core/worker/options.js';
import { ConfigError } from '../../core/errors.js';

function messageOf(o: WorkerOptions): string {
  try {
    checkWorkerOptions(o);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(o)} to be rejected`);
}

describe('checkWorkerOptions', () => {
  it('accepts no options and valid ones', () => {
    expect(() => checkWorkerOptions({})).to.not.throw();
    expect(() =>
      checkWorkerOptions({
        workerId: 'w'.repeat(WORKER_ID_MAX),
        duration: 0,
        grace: 0,
        sleep: 0.01,
        maxTasks: 1,
        concurrency: 1000,
        prefetch: 0,
        queues: ['mail', 'reports'],
        excludeQueues: null,
      }),
    ).to.not.throw();
    expect(() => checkWorkerOptions({ excludeQueues: ['slow'], maxTasks: null })).to.not.throw();
  });

  it('rejects what the settings refuse in the overrides of lockTimeout, heartbeatInterval, maxAttempts and maxRunTime', () => {
    expect(messageOf({ lockTimeout: 0 })).to.equal('Invalid lockTimeout (from the worker options): 0 — expected a finite number >= 1 and <= 2147483');
    expect(messageOf({ lockTimeout: 'abc' as unknown as number })).to.match(/^Invalid lockTimeout \(from the worker options\): "abc" — expected a finite number/);
    for (const heartbeatInterval of [0, -1]) expect(messageOf({ heartbeatInterval })).to.match(/^Invalid heartbeatInterval \(from the worker options\): -?\d — expected a finite number > 0$/);
    expect(messageOf({ maxAttempts: 0 })).to.match(/^Invalid maxAttempts \(from the worker options\): 0 — expected an integer >= 1$/);
    expect(messageOf({ maxRunTime: -1 })).to.match(/^Invalid maxRunTime \(from the worker options\): -1 — expected a finite number > 0/);
    expect(() => checkWorkerOptions({ lockTimeout: 2, heartbeatInterval: 0.5, maxAttempts: 3, maxRunTime: 10 })).to.not.throw();
  });

  it('rejects an unknown option (a misspelt one), a negative settleFlushMs and names that are not an array of names', () => {
    expect(messageOf({ concurency: 3 } as unknown as WorkerOptions)).to.match(/^Unknown worker option "concurency" — did you mean concurrency\? expected one of queues, excludeQueues, concurrency, /);
    expect(messageOf({ zzz: 1 } as unknown as WorkerOptions)).to.match(/^Unknown worker option "zzz" — expected one of /);
    expect(messageOf({ settleFlushMs: -1 })).to.equal('Invalid settleFlushMs: -1 — expected milliseconds >= 0');
    expect(messageOf({ names: 'add' as unknown as string[] })).to.equal('Invalid names: "add" — expected an array of task names');
    expect(messageOf({ names: ['add', ''] })).to.equal('Invalid names: ["add",""] — expected an array of task names');
    expect(messageOf(null as unknown as WorkerOptions)).to.equal('Invalid worker options: null — expected an object');
  });

  it('refuses names that no definition registered, naming them and the registered ones', () => {
    expect(() => checkNamesRegistered(['a', 'ghost', 'b'], ['a', 'b'])).to.throw(ConfigError, /^Invalid names: "ghost" — expected tasks registered in this process \(import the files that define them before the worker starts; registered: a, b\)$/);
    expect(() => checkNamesRegistered(['x'], [])).to.throw(ConfigError, /registered: none\)$/);
    expect(() => checkNamesRegistered(['a'], ['a', 'b'])).to.not.throw();
    expect(() => checkNamesRegistered(undefined, [])).to.not.throw();
  });

  it('rejects an empty or blank --worker-id', () => {
    expect(messageOf({ workerId: '' })).to.equal('Invalid --worker-id: "" — expected a non-empty worker id');
    expect(messageOf({ workerId: '   ' })).to.match(/^Invalid --worker-id: " {3}" — expected a non-empty worker id$/);
  });

  it('rejects a --worker-id longer than 64 characters', () => {
    const id = 'w'.repeat(WORKER_ID_MAX + 1);
    expect(WORKER_ID_MAX).to.equal(64);
    expect(messageOf({ workerId: id })).to.equal(`Invalid --worker-id: "${id}" — expected at most 64 characters`);
  });

  it('rejects a --worker-id that is not a string', () => {
    expect(messageOf({ workerId: 42 as unknown as string })).to.match(/^Invalid --worker-id: 42 — /);
  });

  it('rejects a --sleep of 0, below 0, NaN or Infinity', () => {
    for (const sleep of [0, -1, NaN, Infinity]) {
      expect(messageOf({ sleep }), String(sleep)).to.match(/^Invalid --sleep: .* — expected a finite number of seconds > 0$/);
    }
  });

  it('shows NaN and Infinity as given, not as null', () => {
    expect(messageOf({ sleep: NaN })).to.contain('NaN');
    expect(messageOf({ duration: Infinity })).to.contain('Infinity');
  });

  it('rejects a negative, non-finite or over 100 years --duration and --grace (a run\'s end is stored as a BIGINT of ms)', () => {
    for (const duration of [-1, NaN, Infinity, 1e16, 3_153_600_001]) {
      expect(messageOf({ duration }), String(duration)).to.match(/^Invalid --duration: .* — expected seconds >= 0 \(0 = run until stopped\) and at most 3153600000 \(100 years\)$/);
    }
    expect(messageOf({ grace: -5 })).to.equal('Invalid --grace: -5 — expected seconds >= 0 and at most 3153600000 (100 years)');
    expect(messageOf({ grace: 1e300 })).to.match(/^Invalid --grace: 1e\+300 — /);
    expect(() => checkWorkerOptions({ duration: 3_153_600_000, grace: 3_153_600_000 })).to.not.throw();
  });

  it('rejects a --max-tasks that is not an integer >= 1', () => {
    for (const maxTasks of [0, -1, 1.5, NaN]) {
      expect(messageOf({ maxTasks }), String(maxTasks)).to.match(/^Invalid --max-tasks: .* — expected an integer >= 1$/);
    }
  });

  it('rejects --concurrency and --prefetch out of range', () => {
    expect(messageOf({ concurrency: 0 })).to.equal('Invalid --concurrency: 0 — expected an integer from 1 to 1000');
    expect(messageOf({ concurrency: 1001 })).to.match(/^Invalid --concurrency: 1001/);
    expect(messageOf({ prefetch: -1 })).to.equal('Invalid --prefetch: -1 — expected "auto" or an integer from 0 to 10000');
    expect(() => checkWorkerOptions({ prefetch: 'auto' })).not.to.throw();
    expect(messageOf({ prefetch: 1.5 })).to.match(/^Invalid --prefetch: 1.5/);
  });

  it('rejects empty queue lists and empty queue names, naming the flag', () => {
    expect(messageOf({ queues: [] })).to.equal('Invalid --queue: [] — expected a comma-separated list of queue names');
    expect(messageOf({ queues: ['mail', ''] })).to.match(/^Invalid --queue: /);
    expect(messageOf({ excludeQueues: ['q'.repeat(191)] })).to.match(/^Invalid --exclude-queues: /);
  });

  it('rejects --queue together with --exclude-queues', () => {
    const msg = messageOf({ queues: ['mail'], excludeQueues: ['slow'] });
    expect(msg).to.contain('--exclude-queues');
    expect(msg).to.contain('--queue');
    expect(msg).to.equal('Invalid --exclude-queues: it cannot be combined with --queue — --queue already takes only the queues it names');
  });
});

describe('parseQueueList', () => {
  it('splits on commas and trims', () => {
    expect(parseQueueList('mail, reports ,slow', '--queue')).to.deep.equal(['mail', 'reports', 'slow']);
    expect(parseQueueList('mail', '--queue')).to.deep.equal(['mail']);
  });

  it('rejects empty parts, naming the flag and the value', () => {
    for (const value of ['', 'a,,b', 'a,', ' , ']) {
      expect(() => parseQueueList(value, '--exclude-queues'), value).to.throw(
        ConfigError,
        `Invalid --exclude-queues: ${JSON.stringify(value)} — expected a comma-separated list of queue names`,
      );
    }
  });
});

describe('defaultWorkerId', () => {
  it('is hostname:pid:random hex, at most 64 characters', () => {
    const id = defaultWorkerId();
    expect(id.length).to.be.at.most(WORKER_ID_MAX);
    const m = /^(.*):(\d+):([0-9a-f]{8})$/.exec(id);
    expect(m, id).to.not.equal(null);
    expect(os.hostname().startsWith(m![1]!)).to.equal(true);
    expect(m![1]!.length).to.be.greaterThan(0);
    expect(Number(m![2])).to.equal(process.pid);
  });

  it('differs between calls, so two workers in one process get different ids', () => {
    expect(defaultWorkerId()).to.not.equal(defaultWorkerId());
  });

  it('passes checkWorkerOptions', () => {
    expect(() => checkWorkerOptions({ workerId: defaultWorkerId() })).to.not.throw();
  });
});

describe('heartbeatIntervalMs', () => {
  it('uses the configured interval when it is well under the lock timeout', () => {
    expect(heartbeatIntervalMs(undefined, 10, 60_000)).to.equal(10_000);
  });

  it('lowers a configured interval longer than half a shorter lock timeout to a third of it', () => {
    expect(heartbeatIntervalMs(undefined, 10, 2_000)).to.equal(667);
    expect(heartbeatIntervalMs(undefined, 10, 20_000)).to.equal(10_000);
  });

  it('refuses an explicit interval that is not shorter than the lock timeout, naming both flags', () => {
    expect(() => heartbeatIntervalMs(5, 10, 2_000)).to.throw(ConfigError, /Invalid --heartbeat-interval: 5 — expected fewer seconds than --lock-timeout \(2\)/);
    expect(heartbeatIntervalMs(0.5, 10, 2_000)).to.equal(500);
  });

  it('keeps an explicit interval that is shorter than the lock timeout', () => {
    expect(heartbeatIntervalMs(8, 10, 10_000)).to.equal(8_000);
  });
});

describe('autoPrefetch', () => {
  it('is the concurrency until a task duration is known', () => {
    expect(autoPrefetch(16, -1)).to.equal(16);
  });

  it('holds about 100 ms of work per slot, at most 500', () => {
    expect(autoPrefetch(16, 0.05)).to.equal(500);
    expect(autoPrefetch(16, 10)).to.equal(160);
    expect(autoPrefetch(4, 50)).to.equal(8);
  });

  it('holds nothing extra for tasks that take longer than the work target', () => {
    expect(autoPrefetch(1, 1000)).to.equal(0);
    expect(autoPrefetch(16, 1000)).to.equal(1);
  });
});

/**
 * How an attempt ends when the worker stops it (definition/attempt-control.ts, executor.ts): an
 * abort ends it at once (a function that ignores its signal is abandoned); a request to stop (the
 * liveness fence) aborts the signal but waits for the function, whose own end then decides.
 */
import { expect } from 'chai';
import { background } from '../../core/index.js';
import { AttemptControl } from '../../core/definition/attempt-control.js';
import { internalsOf } from '../../core/definition/definition.js';
import { execute } from '../../core/definition/executor.js';
import { WorkerStoppedError } from '../../core/errors.js';
import type { TaskRow } from '../../core/types.js';
import { recordingLogger } from '../helpers/log.js';

/** Resolves after `ms`, ignoring any signal. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stubborn = background({ name: 'attempt-control.stubborn', context: true }, async function stubborn(_ctx, ms: number) {
  await sleep(ms);
  return 'finished';
});
const cooperative = background({ name: 'attempt-control.cooperative', context: true }, async function cooperative(ctx, ms: number) {
  await new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(ctx.signal.reason);
    });
  });
  return 'finished';
});

function row(name: string, args: unknown[]): TaskRow {
  return { id: '1', name, args: JSON.stringify(args), attempts: 1, claimToken: 'tok', lockedBy: 'w' } as unknown as TaskRow;
}

const fence = () => Object.assign(new WorkerStoppedError('cut off'), { release: true });

function run(def: unknown, args: unknown[], control: AttemptControl) {
  const d = internalsOf(def)!;
  return execute({ task: row(d.name, args), def: d, maxRunTimeMs: 60_000, control, log: recordingLogger() });
}

describe('stopping an attempt', () => {
  it('an abort ends the attempt at once, abandoning a function that ignores its signal', async () => {
    const control = new AttemptControl();
    const started = Date.now();
    const ended = run(stubborn, [300], control);
    control.abort(fence());
    expect(await ended).to.deep.equal({ kind: 'released' });
    expect(Date.now() - started).to.be.lessThan(250);
  });

  it('a request to stop aborts the signal but waits: a function that returns anyway keeps its result', async () => {
    const control = new AttemptControl();
    const started = Date.now();
    const ended = run(stubborn, [300], control);
    await sleep(20);
    control.askToStop(fence());
    expect(control.signal.aborted).to.equal(true);
    expect(await ended).to.deep.equal({ kind: 'success', returnJson: '"finished"' });
    expect(Date.now() - started).to.be.at.least(290);
  });

  it('a request to stop ends the attempt as the request says when the function stops (rejects)', async () => {
    const control = new AttemptControl();
    const ended = run(cooperative, [5000], control);
    await sleep(20);
    control.askToStop(fence());
    expect(await ended).to.deep.equal({ kind: 'released' });
  });

  it('a signal asked for after the request is already aborted, and an abort after it still ends the attempt at once', async () => {
    const control = new AttemptControl();
    control.askToStop(fence());
    expect(control.signal.aborted).to.equal(true);
    expect(control.aborted).to.equal(false);
    const ended = run(stubborn, [5000], control);
    control.abort(new Error('shutdown'));
    expect((await ended).kind).to.equal('error');
  });
});

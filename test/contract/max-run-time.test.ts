/**
 * maxRunTime given at the call site, on every database: it overrides the definition's limit.
 */
import { expect } from 'chai';
import { background, getResult, schedule } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

/** Ends on its own after 600 ms (well within its own 30 s limit), or rejects when its signal aborts. */
const limited = background({ name: 'gaps.limited', context: true, maxRunTime: 30 }, async function limited(ctx) {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, 600);
    ctx.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      },
      { once: true },
    );
  });
  return 'finished';
});

const T0 = Date.UTC(2032, 3, 1, 9);

contract('maxRunTime', (db) => {
  const { drain } = manualClockSuite(db, T0);

  it("a call-site maxRunTime overrides the definition's: the task fails with a TaskTimeoutError although its definition allows longer", async () => {
    const short = await limited(schedule(0, { maxRunTime: 0.2 }));
    const control = await limited();
    const summary = await drain();
    expect(summary).to.include({ rescheduled: 1, succeeded: 1 });
    const r = await getResult(short.id);
    expect(r.status).to.equal('READY');
    expect(r.attempts).to.equal(1);
    expect(r.errors).to.have.length(1);
    expect(r.errors[0]!.exceptionClass).to.equal('TaskTimeoutError');
    expect(r.errors[0]!.message).to.match(/ran longer than its maxRunTime of 0\.2 s/);
    // The same task without the call-site limit runs to its end under the definition's 30 s.
    expect((await getResult(control.id)).returnValue).to.equal('finished');
  });
});

/** core/base/long-timer.ts: delays beyond Node's 2^31-1 ms timer limit, waited as a chain. */
import { expect } from 'chai';
import { MAX_TIMER_MS, setLongTimeout } from '../../core/base/long-timer.js';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { waitUntil } from '../helpers/databases.js';
import { REPO, TSX_LOADER } from '../helpers/project.js';

describe('setLongTimeout', () => {
  it('does not fire a delay above 2^31-1 ms early (a plain setTimeout fires it after 1 ms)', async () => {
    let fired = 0;
    const t = setLongTimeout(() => fired++, MAX_TIMER_MS + 1000);
    // A plain setTimeout of this delay fires on the next turns of the loop: give it many.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
    t.clear();
    expect(fired).to.equal(0);
  });

  it('chains timers of at most chunkMs and fires once, after the whole delay', async () => {
    const start = Date.now();
    let at = 0;
    let fired = 0;
    setLongTimeout(
      () => {
        fired++;
        at = Date.now();
      },
      90,
      25,
    );
    await waitUntil(() => fired > 0, 'the long timer to fire', 5000, 5);
    expect(at - start).to.be.at.least(89);
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).to.equal(1);
  });

  it('clear() in the middle of the chain cancels it', async () => {
    let fired = 0;
    const t = setLongTimeout(() => fired++, 60, 20);
    await new Promise((r) => setTimeout(r, 30));
    t.clear();
    await new Promise((r) => setTimeout(r, 80));
    expect(fired).to.equal(0);
  });

  it('fires a delay of 0 (or NaN, or a negative one) on a later turn, never synchronously', async () => {
    const order: string[] = [];
    setLongTimeout(() => order.push('zero'), 0);
    setLongTimeout(() => order.push('nan'), NaN);
    setLongTimeout(() => order.push('negative'), -5);
    order.push('sync');
    await waitUntil(() => order.length === 4, 'the three timers', 2000, 5);
    expect(order[0]).to.equal('sync');
  });

  it('never fires Infinity', async () => {
    let fired = 0;
    const t = setLongTimeout(() => fired++, Infinity, 10);
    await new Promise((r) => setTimeout(r, 60));
    t.clear();
    expect(fired).to.equal(0);
  });

  it('unref() lets the process exit while only it is pending, along the whole chain', () => {
    const url = pathToFileURL(path.join(REPO, 'core', 'base', 'long-timer.ts')).href;
    // Chunks of 10 ms: the chain re-arms many times within the 60 s delay and each link is unref'd.
    const code = `const m = await import(${JSON.stringify(url)}); m.setLongTimeout(() => console.log('fired'), 60000, 10).unref(); setTimeout(() => {}, 100);`;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--import', TSX_LOADER, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: r.status, stdout: r.stdout }).to.deep.equal({ status: 0, stdout: '' });
    expect(Date.now() - started).to.be.below(15_000);
  });
});

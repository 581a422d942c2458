/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core), against the
 * in-memory source: hostile text renders as text and runs nothing, the CSP is sent and enforced,
 * an action button changes the page, live refresh updates counts in place without losing a
 * ticked box or the user's typing, and a read-only dashboard hides actions and refuses a forged
 * POST. Waits poll the page; nothing sleeps.
 */
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { serveDashboard, type DashboardServer } from '../../core/dashboard/index.js';
import { withChromium } from '../helpers/browser.js';
import { memTask, type MemorySource } from './memory-source.js';
import { fixedClock, hostile, seeded, XSS_ATTR, XSS_SCRIPT } from './fixtures.js';

const WAIT = { timeout: 10_000, polling: 100 };

// What the callbacks of page.evaluate() use in the browser: the project compiles without the DOM
// lib (it would change fetch's types everywhere), so they are declared here, loosely.
declare const window: any;
declare const document: any;

describe('dashboard in Chromium', function () {
  this.timeout(60_000);
  const browser = withChromium();
  const servers: DashboardServer[] = [];

  async function serve(source: MemorySource, opts: { readOnly?: boolean } = {}): Promise<string> {
    const s = await serveDashboard({ source, port: 0, refreshSeconds: 0.5, readOnly: opts.readOnly, now: source.now, logger: { error: () => undefined } });
    servers.push(s);
    return s.url.replace(/\/$/, '');
  }

  afterEach(async () => {
    while (servers.length) await servers.pop()?.close();
  });

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const { page, problems } = await browser().newPage();
    const res = await page.goto(url);
    expect(res?.status(), url).to.equal(200);
    return { page, errors: problems.errors };
  }

  it('renders hostile names, queues, arguments, results and errors as text, and no script of theirs runs', async () => {
    const base = await serve(hostile());
    for (const path of ['/tasks', '/tasks/66', '/failed', '/schedules', '/workers']) {
      const { page, errors } = await open(base + path);
      // The CSP would stop an inline script even if it were inserted, so the element count and the
      // visible text are what prove the escaping; __xss proves nothing ran by either defence.
      expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), path).to.equal(undefined);
      expect(await page.locator('img, main script').count(), path).to.equal(0);
      expect(await page.locator('main').innerText(), path).to.contain(XSS_SCRIPT);
      expect(errors, path).to.deep.equal([]);
      await page.close();
    }
    const { page } = await open(`${base}/tasks/66`);
    expect(await page.locator('pre[data-args]').innerText()).to.contain(XSS_ATTR.replace(/"/g, '\\"'));
    expect(await page.locator('h1').innerText()).to.equal(`Task #66 ${XSS_SCRIPT}`);
    // The live refresh swaps server HTML in with innerHTML: it must stay inert after a swap too.
    await page.waitForFunction(() => /updated/.test(document.querySelector('[data-refresh-state]')?.textContent ?? ''), null, WAIT);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).to.equal(undefined);
    await page.close();
  });

  it('sends the CSP header, and the browser enforces it: an injected inline script does not run', async () => {
    const base = await serve(seeded());
    const { page, problems } = await browser().newPage();
    const res = await page.goto(`${base}/`);
    expect(res?.headers()['content-security-policy']).to.contain("script-src 'self'");
    expect(res?.headers()['x-frame-options']).to.equal('DENY');
    const ran = await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.body.appendChild(s);
      return (window as unknown as { __inline?: number }).__inline;
    });
    expect(ran).to.equal(undefined);
    expect(problems.errors.some((e) => /Content Security Policy/.test(e))).to.equal(true);
    await page.close();
  });

  it('an action button changes the page: Run now on a ticked task, Retry on a task page, each with its report', async () => {
    const source = seeded(fixedClock());
    const base = await serve(source);
    const { page, errors } = await open(`${base}/tasks?status=ready`);
    expect(await page.locator('tr[data-task-id="2"]').innerText()).to.contain('runs');
    await page.check('input[data-select][value="2"]');
    await Promise.all([page.waitForURL(`${base}/tasks?status=ready`), page.click('button[name="action"][value="runNow"]')]);
    expect(await page.locator('.flash').innerText()).to.contain('Run now: 1 task moved to now.');
    expect(await page.locator('tr[data-task-id="2"]').innerText()).to.contain('due');

    await page.goto(`${base}/tasks/5`);
    await Promise.all([page.waitForURL(`${base}/tasks/5`), page.click('button[name="action"][value="retry"]')]);
    expect(await page.locator('.flash').innerText()).to.match(/#5 sendEmail: retried as #\d+/);
    expect(source.tasks.filter((t) => t.status === 'READY')).to.have.length(3);
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('live refresh updates counts in place, keeps ticked boxes and open details, and waits while the user types', async () => {
    const source = seeded(fixedClock());
    const base = await serve(source);

    const { page: overview } = await open(`${base}/`);
    await overview.evaluate(() => ((window as unknown as { __marker: number }).__marker = 1));
    const readyCount = () => overview.locator('[data-count="READY"] .value').innerText();
    expect(await readyCount()).to.equal('2');
    source.tasks.push(memTask(50, { status: 'READY', queue: 'mail' }));
    await overview.waitForFunction(() => document.querySelector('[data-count="READY"] .value')?.textContent === '3', null, WAIT);
    expect(await overview.evaluate(() => (window as unknown as { __marker?: number }).__marker)).to.equal(1);
    await overview.close();

    const { page } = await open(`${base}/tasks`);
    await page.evaluate(() => ((window as unknown as { __marker: number }).__marker = 1));
    await page.check('input[data-select][value="1"]');
    source.tasks.push(memTask(51, { status: 'READY', at: source.now() }));
    await page.waitForFunction(() => document.querySelector('tr[data-task-id="51"]') !== null, null, WAIT);
    expect(await page.isChecked('input[data-select][value="1"]')).to.equal(true);
    expect(await page.isChecked('input[data-select][value="2"]')).to.equal(false);
    expect(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker)).to.equal(1);

    // Typing in a filter pauses the refresh: a new task does not appear until the field is left.
    await page.click('input[name="q"]');
    await page.keyboard.type('user');
    await page.waitForFunction(() => document.querySelector('[data-refresh-state]')?.textContent === 'Paused while you type', null, WAIT);
    source.tasks.push(memTask(52, { status: 'READY', at: source.now() }));
    // Two more turns of the timer, each seen paused, before checking nothing was swapped in.
    for (let turn = 0; turn < 2; turn++) {
      await page.evaluate(() => {
        const el = document.querySelector('[data-refresh-state]');
        if (el) el.textContent = '';
      });
      await page.waitForFunction(() => document.querySelector('[data-refresh-state]')?.textContent === 'Paused while you type', null, WAIT);
    }
    expect(await page.locator('tr[data-task-id="52"]').count()).to.equal(0);
    expect(await page.inputValue('input[name="q"]')).to.equal('user');
    await page.locator('input[name="q"]').blur();
    await page.waitForFunction(() => document.querySelector('tr[data-task-id="52"]') !== null, null, WAIT);
    expect(await page.isChecked('input[data-select][value="1"]')).to.equal(true);
    await page.close();

    const { page: detail } = await open(`${base}/tasks/5`);
    await detail.click('details[data-key="error-0"] summary');
    const task5 = source.tasks.find((t) => t.id === '5');
    if (task5) task5.attempts = 4;
    await detail.waitForFunction(() => /4/.test(document.querySelector('dl.fields')?.textContent?.match(/attempts\s*\d+/)?.[0] ?? ''), null, WAIT);
    expect(await detail.evaluate(() => document.querySelector('details[data-key="error-0"]').open)).to.equal(true);
    await detail.close();
  });

  it('read-only: no action controls, and a forged POST from the page is refused with 403 and changes nothing', async () => {
    const source = seeded(fixedClock());
    const base = await serve(source, { readOnly: true });
    const { page, errors } = await open(`${base}/tasks`);
    expect(await page.locator('button[name="action"]').count()).to.equal(0);
    expect(await page.locator('input[data-select]').count()).to.equal(0);
    expect(await page.locator('a[href*="/confirm"]').count()).to.equal(0);
    const status = await page.evaluate(async () => {
      const res = await fetch('/actions', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'action=delete&id=5&id=6',
      });
      return res.status;
    });
    expect(status).to.equal(403);
    expect(source.tasks.map((t) => t.id)).to.include.members(['5', '6']);
    expect(errors.filter((e) => !/403/.test(e))).to.deep.equal([]);
    await page.close();
  });
});

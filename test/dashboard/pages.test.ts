/**
 * The dashboard's pages rendered through `fetch` against the in-memory source: what each page
 * shows, the live region alone with `?fragment=1`, text from the queue escaped everywhere, no
 * inline script or style, and read-only pages without action controls.
 */
import { expect } from 'chai';
import { createDashboard } from '../../core/dashboard/index.js';
import { Client } from './client.js';
import { fixedClock, hostile, NOW, seeded, XSS_ATTR, XSS_SCRIPT } from './fixtures.js';

function setup(opts: { readOnly?: boolean; source?: ReturnType<typeof seeded> } = {}) {
  const clock = fixedClock();
  const source = opts.source ?? seeded(clock);
  const dashboard = createDashboard({ source, readOnly: opts.readOnly, now: clock.now, logger: { error: () => undefined } });
  return { source, client: new Client(dashboard.fetch), clock };
}

async function page(client: Client, path: string): Promise<string> {
  const res = await client.get(path);
  expect(res.status, `${path} status`).to.equal(200);
  expect(res.headers.get('content-type')).to.equal('text/html; charset=utf-8');
  return res.text();
}

const PAGES = ['/', '/tasks', '/tasks/5', '/failed', '/schedules', '/workers', '/confirm?action=retry'];

describe('dashboard pages', () => {
  it('overview: totals by status, the oldest due task and its wait, failures, workers, queues and the chart', async () => {
    const { client } = setup();
    const text = await page(client, '/');
    expect(text).to.match(/data-count="READY"><a href="\/tasks\?status=ready"><div class="label">ready<\/div><div class="value">2</);
    expect(text).to.match(/data-count="FAILED">.*?<div class="value">2</s);
    expect(text).to.match(/data-count="failuresLastHour">.*?<div class="value">2</s);
    expect(text).to.match(/data-count="workersAlive">.*?<div class="value">1</s);
    expect(text).to.contain('<a href="/tasks/1">#1 sendEmail</a> (queue mail)');
    expect(text).to.contain('waiting <strong>2 min</strong>');
    expect(text).to.contain('<tr data-queue="mail"><td><a href="/tasks?queue=mail">mail</a></td>');
    expect(text).to.contain('<tr data-queue="-"><td><a href="/tasks?queue=-">-</a></td>');
    expect(text).to.contain('aria-label="Tasks finished per minute, last hour: 1 succeeded, 2 failed"');
  });

  it('tasks: rows with status, queue, the time that matters, arguments and last error; checkboxes in the actions form', async () => {
    const { client } = setup();
    const text = await page(client, '/tasks?status=failed,ready');
    expect(text.match(/<tr data-task-id=/g)).to.have.length(4);
    expect(text).to.contain('<input type="checkbox" name="id" value="5" form="task-actions" data-select');
    expect(text).to.contain('<strong>SmtpError</strong>: timeout again');
    expect(text).to.match(/<span class="muted">runs<\/span> <time datetime="2030-01-02T03:40:00.000Z"/);
    expect(text).to.match(/<span class="muted">due<\/span> <time datetime="2030-01-02T03:28:00.000Z"/);
    expect(text).to.contain('<form id="task-actions" method="post" action="/actions">');
    // "all matching" goes through the confirmation page and keeps the filter
    expect(text).to.contain('href="/confirm?status=failed%2Cready&amp;action=retry"');
  });

  it('tasks: the filter form keeps the values given, and offers known names and queues', async () => {
    const { client } = setup();
    const text = await page(client, '/tasks?name=sendEmail&q=user1&status=ready');
    expect(text).to.contain('<input type="text" name="name" value="sendEmail"');
    expect(text).to.contain('<input type="search" name="q" value="user1"');
    expect(text).to.contain('<input type="checkbox" name="status" value="ready" checked>');
    expect(text).to.contain('<datalist id="name-choices"><option value="report"></option><option value="resize"></option><option value="sendEmail"></option></datalist>');
    expect(text.match(/<tr data-task-id=/g)).to.have.length(1);
  });

  it('task: the full record, its arguments, result, errors with stacks, attempts and the actions its status allows', async () => {
    const { client } = setup();
    const failed = await page(client, '/tasks/5');
    expect(failed).to.contain('<h1>Task #5 sendEmail</h1>');
    expect(failed).to.contain('<pre data-args>[\n  &quot;user5@example.com&quot;\n]</pre>');
    expect(failed).to.contain('<details data-key="error-1"><summary>attempt 3 at 2030-01-02T03:20:00.000Z on w1: <strong>SmtpError</strong>: timeout again</summary><pre>SmtpError: timeout again');
    expect(failed).to.contain('<button type="submit" name="action" value="retry">Retry</button>');
    expect(failed).to.contain('value="delete"');
    expect(failed).not.to.contain('value="runNow"');
    const running = await page(client, '/tasks/3');
    expect(running).to.contain('held by web-1:42:abc until');
    expect(running).to.contain('value="cancel"');
    expect(running).not.to.contain('value="delete"');
    const done = await page(client, '/tasks/4');
    expect(done).to.contain('<pre data-result>{\n  &quot;ok&quot;: true\n}</pre>');
  });

  it('task: an unknown id is a 404 page that says so', async () => {
    const { client } = setup();
    const res = await client.get('/tasks/999');
    expect(res.status).to.equal(404);
    expect(await res.text()).to.contain('No task or result has id <span class="mono">999</span>');
  });

  it('failed: groups by task name and error class, with links to their tasks and bulk actions through confirmation', async () => {
    const { client } = setup();
    const text = await page(client, '/failed?since=3600');
    expect(text).to.contain('<tr data-group="sendEmail|SmtpError">');
    expect(text).to.contain('<tr data-group="report|TypeError">');
    const since = new Date(NOW - 3600_000).toISOString().replace(/:/g, '%3A');
    expect(text).to.contain(`href="/tasks?status=failed&amp;name=sendEmail&amp;error=SmtpError&amp;time=finishedAt&amp;from=${since}"`);
    expect(text).to.contain(`href="/confirm?status=failed&amp;name=report&amp;error=TypeError&amp;time=finishedAt&amp;from=${since}&amp;action=retry"`);
  });

  it('schedules: zone, slots, the pending task and a Run now button for it', async () => {
    const { client } = setup();
    const text = await page(client, '/schedules');
    expect(text).to.contain('<td class="mono">0 3 * * *</td><td>Europe/Berlin</td>');
    expect(text).to.contain('<a href="/tasks/2">#2</a>');
    expect(text).to.match(/<input type="hidden" name="id" value="2">.*?<button type="submit" name="action" value="runNow">Run now<\/button>/s);
  });

  it('schedules: the "(stale)" note shows only when a schedule is stale, and the stale one says so in place of its next slot', async () => {
    const fresh = setup();
    expect(await page(fresh.client, '/schedules')).not.to.contain('(stale)');
    const { client, source } = setup();
    source.scheduleList[0]!.stale = true;
    const text = await page(client, '/schedules');
    expect(text).to.contain('<strong>(stale)</strong>');
    expect(text).to.contain('(stale): no worker has declared the schedule for 10 minutes');
  });

  it('workers: alive with running tasks and their age, and recently gone ones', async () => {
    const { client } = setup();
    const text = await page(client, '/workers');
    expect(text).to.contain('<h2>Alive (1)</h2>');
    expect(text).to.contain('<a href="/tasks/3">#3</a> resize <span class="muted">(media) for 1 min</span>');
    expect(text).to.contain('<td class="num">1 / 4</td>');
    expect(text).to.match(/<h2>Gone recently \(1\)<\/h2>.*web-2:7:def.*<td>lost<\/td>/s);
  });

  it('a fragment request returns the live region alone, without the page shell or the filter form', async () => {
    const { client } = setup();
    for (const path of ['/?fragment=1', '/tasks?fragment=1', '/tasks/5?fragment=1', '/failed?fragment=1', '/schedules?fragment=1', '/workers?fragment=1']) {
      const res = await client.get(path);
      expect(res.status, path).to.equal(200);
      const text = await res.text();
      expect(text, path).not.to.contain('<html');
      expect(text, path).not.to.contain('<form class="filters"');
    }
    expect(await (await client.get('/tasks?fragment=1')).text()).to.match(/^<p class="muted" data-row-count="6">/);
  });

  it('every page links one script and one stylesheet from the base path and has no inline script, style or handler', async () => {
    const { client } = setup();
    for (const path of PAGES) {
      const text = await page(client, path);
      expect(text.match(/<script/g), path).to.have.length(1);
      expect(text, path).to.match(/<script src="\/assets\/live\.js\?v=[0-9a-f]{12}" defer><\/script>/);
      expect(text, path).to.match(/<link rel="stylesheet" href="\/assets\/style\.css\?v=[0-9a-f]{12}">/);
      expect(text, path).not.to.match(/<style|\sstyle=|\son[a-z]+=/i);
    }
  });

  it('text from the queue is escaped on every page: names, queues, arguments, results, errors, workers, schedules', async () => {
    const { client } = setup({ source: hostile() });
    for (const path of ['/', '/tasks', '/tasks/66', '/failed', '/schedules', '/workers', '/tasks?fragment=1', '/tasks/66?fragment=1']) {
      const text = await page(client, path);
      expect(text, path).not.to.contain(XSS_SCRIPT);
      expect(text, path).not.to.contain(XSS_ATTR);
      expect(text, path).not.to.contain('<img');
    }
    const detail = await page(client, '/tasks/66');
    expect(detail).to.contain('&lt;script&gt;window.__xss = (window.__xss || 0) + 1&lt;/script&gt;');
    expect(detail).to.contain('&quot;&gt;&lt;img src=x onerror=&quot;window.__xss');
  });

  it('read-only: no checkboxes, action buttons or confirmation links on any page', async () => {
    const { client } = setup({ readOnly: true });
    for (const path of ['/', '/tasks', '/tasks/5', '/tasks/3', '/failed', '/schedules', '/workers']) {
      const text = await page(client, path);
      expect(text, path).not.to.match(/name="action"|data-select|\/confirm\?|name="csrf"|method="post"/);
    }
    expect(await page(client, '/')).to.contain(' · read-only');
  });

  it('the footer shows the source description (already masked), never a raw URL', async () => {
    const { client } = setup();
    expect(await page(client, '/')).to.contain('<footer>memory:test (password ***) · bgtasks 0.1.0 · times in UTC</footer>');
  });
});

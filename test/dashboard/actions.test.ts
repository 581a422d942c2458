/**
 * Actions from the web: ticked ids and "every task matching the filter" (after a confirmation
 * that counts them), the redirect back with a flash message that says what changed and what was
 * refused, and the same actions through the JSON API.
 */
import { expect } from 'chai';
import { createDashboard, type DashboardOptions } from '../../core/dashboard/index.js';
import { itemLine, parseIds, safeReturnTo, summarize } from '../../core/dashboard/actions.js';
import { memTask } from './memory-source.js';
import { Client, json } from './client.js';
import { fixedClock, NOW, seeded } from './fixtures.js';

function setup(opts: Partial<DashboardOptions> = {}, headers: Record<string, string> = {}) {
  const clock = fixedClock();
  const source = seeded(clock);
  const dashboard = createDashboard({ source, now: clock.now, logger: { error: () => undefined }, ...opts });
  return { source, client: new Client(dashboard.fetch, 'http://localhost', headers), clock };
}

const flashOf = (page: string): string | null => /<div class="flash[^"]*" role="status">(.*?)<\/div>/s.exec(page)?.[1] ?? null;

describe('dashboard actions', () => {
  it('ticked ids: runs the action, redirects back, and the next page says what changed; the message shows once', async () => {
    const { client, source } = setup();
    const token = await client.csrf('/tasks?status=ready');
    const res = await client.postForm('/actions', [['csrf', token], ['action', 'runNow'], ['id', '2'], ['id', '1'], ['returnTo', '/tasks?status=ready']]);
    expect(res.status).to.equal(303);
    expect(res.headers.get('location')).to.equal('/tasks?status=ready');
    expect(source.tasks.find((t) => t.id === '2')?.runAt).to.equal(NOW);
    const page = await (await client.get('/tasks?status=ready')).text();
    expect(flashOf(page)).to.equal(
      '<strong>Run now: 1 task moved to now, 1 unchanged.</strong><ul><li>#2 sendEmail: run time moved to now</li><li>#1 sendEmail: already due; left as it is</li></ul>',
    );
    expect(flashOf(await (await client.get('/tasks?status=ready')).text())).to.equal(null);
  });

  it('reports refusals by task, in the CLI\'s words, and unknown ids', async () => {
    const { client } = setup();
    const token = await client.csrf();
    await client.postForm('/actions', [['csrf', token], ['action', 'delete'], ['id', '3'], ['id', '404'], ['id', '4']]);
    const flash = flashOf(await (await client.get('/tasks')).text());
    expect(flash).to.contain('<strong>Delete: 1 task deleted, 2 refused.</strong>');
    expect(flash).to.contain('<li>#3 resize: not deleted: it is running (cancel it instead)</li>');
    expect(flash).to.contain('<li>#404: no task has this id</li>');
    expect(flash).to.contain('<li>#4 resize: deleted (was successful)</li>');
  });

  it('a flash cookie that was tampered with is ignored', async () => {
    const { client } = setup();
    const token = await client.csrf();
    await client.postForm('/actions', [['csrf', token], ['action', 'retry'], ['id', '5']]);
    const sealed = client.cookies.get('bgtasks_flash') ?? '';
    const forged = Buffer.from(JSON.stringify({ kind: 'ok', text: 'Deleted everything', lines: [] })).toString('base64url');
    client.cookies.set('bgtasks_flash', `${forged}${sealed.slice(sealed.lastIndexOf('.'))}`);
    const page = await (await client.get('/tasks')).text();
    expect(page).not.to.contain('Deleted everything');
    expect(flashOf(page)).to.equal(null);
  });

  it('nothing ticked: no call to the source, and a message that says to tick tasks', async () => {
    const { client, source } = setup();
    const token = await client.csrf();
    const res = await client.postForm('/actions', [['csrf', token], ['action', 'retry'], ['returnTo', '/tasks']]);
    expect(res.status).to.equal(303);
    expect(source.calls).not.to.include('retry');
    expect(flashOf(await (await client.get('/tasks')).text())).to.contain('No task ticked');
  });

  it('redirects only to a path under the base: another site or a scheme goes to the tasks page', () => {
    const view = { base: '/q' };
    expect(safeReturnTo(view, '/q/tasks?status=failed')).to.equal('/q/tasks?status=failed');
    for (const bad of ['https://evil.example/', '//evil.example/q/', '/other', '/q', '/q/\\evil', '/q/ x', null]) {
      expect(safeReturnTo(view, bad), String(bad)).to.equal('/q/tasks');
    }
  });

  it('an unknown action is a 400 that names it', async () => {
    const { client } = setup();
    const token = await client.csrf();
    const res = await client.postForm('/actions', [['csrf', token], ['action', 'explode'], ['id', '1']]);
    expect(res.status).to.equal(400);
    expect(await res.text()).to.contain('unknown action &#39;explode&#39;: expected retry, cancel, delete, runNow');
  });

  it('bounds the ids of one request', () => {
    expect(parseIds(['1', ' 2 ', '1'])).to.deep.equal(['1', '2']);
    expect(() => parseIds(Array.from({ length: 1001 }, (_, i) => String(i)))).to.throw(/too many task ids: 1001/);
    expect(() => parseIds(['x'.repeat(65)])).to.throw(/not a task id/);
    expect(() => parseIds([''])).to.throw(/not a task id/);
  });

  describe('every task matching the filter', () => {
    it('confirmation: counts only the tasks the action applies to, shows the filter, and changes nothing yet', async () => {
      const { client, source } = setup();
      const res = await client.get('/confirm?action=retry&queue=mail');
      expect(res.status).to.equal(200);
      const text = await res.text();
      expect(text).to.contain('<h1>Retry 1 task?</h1>');
      expect(text).to.contain('Retry every task matching: <strong>status failed; queue mail</strong>.');
      expect(text).to.contain('data-confirm-count="1"');
      expect(text).to.contain('<input type="hidden" name="scope" value="filter">');
      expect(text).to.contain('<input type="hidden" name="status" value="failed">');
      expect(text).not.to.contain('id="live"');
      expect(source.calls).to.deep.equal(['countTasks']);
    });

    it('confirmation: says why there is nothing to do', async () => {
      const { client } = setup();
      expect(await (await client.get('/confirm?action=runNow&status=failed')).text()).to.contain(
        'Run now applies to ready tasks only, and the filter selects none of them.',
      );
      expect(await (await client.get('/confirm?action=retry&name=nothing')).text()).to.contain('No task matches now.');
    });

    it('the confirmed form acts on the narrowed filter and reports the count', async () => {
      const { client, source } = setup();
      source.tasks.push(memTask(7, { name: 'sendEmail', queue: 'mail', status: 'FAILED', finishedAt: NOW - 1000 }));
      const confirm = await (await client.get('/confirm?action=retry&queue=mail')).text();
      const fields = [...confirm.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replace(/&amp;/g, '&')] as [string, string]);
      const res = await client.postForm('/actions', fields);
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal('/tasks?queue=mail');
      expect(source.tasks.filter((t) => t.status === 'READY' && t.queue === 'mail')).to.have.length(4);
      const flash = flashOf(await (await client.get('/tasks?queue=mail')).text());
      expect(flash).to.contain('<strong>Retry: 2 tasks retried.</strong>');
      expect(flash).to.match(/<li>#5 sendEmail: retried as #\d+<\/li>/);
    });

    it('says so when the number that matched differs from the one confirmed', () => {
      const flash = summarize({ action: 'cancel', changed: 3, unchanged: 0, refused: 0, items: [], itemsOmitted: 0 }, 5);
      expect(flash.text).to.equal('Cancel: 3 tasks cancelled, 5 matched when you confirmed.');
    });

    it('keeps the flash short: at most 20 lines and a count of the rest', () => {
      const items = Array.from({ length: 30 }, (_, i) => ({ id: String(i), name: 'n', outcome: 'deleted' as const, before: 'FAILED' as const, after: null, newId: null }));
      const flash = summarize({ action: 'delete', changed: 1030, unchanged: 0, refused: 0, items, itemsOmitted: 1000 });
      expect(flash.lines).to.have.length(21);
      expect(flash.lines[20]).to.equal('… and 1,010 more');
    });
  });

  it('words every outcome', () => {
    const item = (outcome: Parameters<typeof itemLine>[1]['outcome'], before: 'READY' | 'RUNNING' | 'FAILED' | null = 'READY') => ({ id: '9', name: 'x', outcome, before, after: null, newId: '10' });
    expect(itemLine('retry', item('retried', 'FAILED'))).to.equal('#9 x: retried as #10');
    expect(itemLine('cancel', item('cancelled'))).to.equal('#9 x: cancelled (now failed)');
    expect(itemLine('cancel', item('cancelRequested', 'RUNNING'))).to.equal('#9 x: running: cancel requested; its worker aborts it at its next heartbeat');
    expect(itemLine('cancel', item('unchanged', 'RUNNING'))).to.equal('#9 x: cancel already requested; left as it is');
    expect(itemLine('retry', item('wrongStatus'))).to.equal('#9 x: not retried: it is ready (retry applies to failed tasks)');
    expect(itemLine('runNow', item('changedMeanwhile'))).to.equal('#9 x: not moved to now: it changed while the action ran');
  });

  describe('JSON API', () => {
    it('reads: overview, tasks with cursors, one task, count, failed groups, schedules, workers; times as ISO strings', async () => {
      const { client } = setup();
      const overview = await json(client.get('/api/overview'));
      expect(overview.totals).to.deep.equal({ READY: 2, RUNNING: 1, SUCCESSFUL: 1, FAILED: 2 });
      expect(overview.at).to.equal(new Date(NOW).toISOString());
      expect(overview.throughput).to.have.length(60);
      const page = await json(client.get('/api/tasks?limit=4'));
      expect(page.rows.map((r: { id: string }) => r.id)).to.deep.equal(['3', '2', '1', '4']);
      expect(page.next).to.be.a('string');
      const page2 = await json(client.get(`/api/tasks?limit=4&cursor=${page.next}`));
      expect(page2.rows.map((r: { id: string }) => r.id)).to.deep.equal(['6', '5']);
      expect((await json(client.get('/api/tasks/5'))).errors[1].message).to.equal('timeout again');
      expect((await client.get('/api/tasks/999')).status).to.equal(404);
      expect(await json(client.get('/api/count?status=failed'))).to.deep.equal({ count: 2 });
      expect((await json(client.get('/api/failed?since=0'))).groups).to.have.length(2);
      expect((await json(client.get('/api/schedules')))[0].timezone).to.equal('Europe/Berlin');
      expect((await json(client.get('/api/workers'))).alive[0].running[0].id).to.equal('3');
    });

    it('actions need the token from api/csrf in X-CSRF-Token, and answer with what changed', async () => {
      const { client, source } = setup();
      expect((await client.postJson('/api/actions/cancel', { ids: ['1'] })).status).to.equal(403);
      const { token } = await json(client.get('/api/csrf'));
      const res = await client.postJson('/api/actions/cancel', { ids: ['1', '3', '4'] }, { 'x-csrf-token': token });
      expect(res.status).to.equal(200);
      const result = await json(res);
      expect(result).to.include({ action: 'cancel', changed: 2, unchanged: 0, refused: 1 });
      expect(result.items.map((i: { outcome: string }) => i.outcome)).to.deep.equal(['cancelled', 'cancelRequested', 'wrongStatus']);
      expect(source.tasks.find((t) => t.id === '1')?.status).to.equal('FAILED');
    });

    it('acts on a filter given as query parameters, narrowed to the statuses the action applies to', async () => {
      const { client, source } = setup();
      const { token } = await json(client.get('/api/csrf'));
      const res = await client.postJson('/api/actions/delete', { filter: { queue: 'media' } }, { 'x-csrf-token': token });
      const result = await json(res);
      expect(result).to.include({ changed: 1, refused: 0 });
      expect(source.tasks.map((t) => t.id)).to.include('3');
      expect(source.tasks.map((t) => t.id)).not.to.include('4');
    });

    it('refuses bodies it cannot use, with messages', async () => {
      const { client } = setup();
      const { token } = await json(client.get('/api/csrf'));
      const h = { 'x-csrf-token': token };
      const cases: Array<[unknown, RegExp]> = [
        [{}, /give ids .* or filter/],
        [{ ids: [] }, /ids is empty/],
        [{ ids: ['1'], filter: {} }, /either ids or filter/],
        [{ filter: 'status=failed' }, /filter must be an object/],
        [{ filter: { status: 'done' } }, /unknown status 'done'/],
      ];
      for (const [body, message] of cases) {
        const res = await client.postJson('/api/actions/retry', body, h);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect((await json(res)).error.message).to.match(message);
      }
      expect((await client.postJson('/api/actions/explode', { ids: ['1'] }, h)).status).to.equal(400);
      expect((await client.postForm('/api/actions/retry', [['ids', '1']], h)).status).to.equal(415);
    });

    it('a script signed in with the Bearer token needs no CSRF token (a browser never sends one by itself)', async () => {
      const { client } = setup({ auth: 't0ken' }, { authorization: 'Bearer t0ken' });
      const res = await client.postJson('/api/actions/runNow', { ids: ['2'] });
      expect(res.status).to.equal(200);
      expect((await json(res)).changed).to.equal(1);
      const basicClient = setup({ auth: 't0ken' }, { authorization: `Basic ${Buffer.from('u:t0ken').toString('base64')}` }).client;
      expect((await basicClient.postJson('/api/actions/runNow', { ids: ['2'] })).status).to.equal(403);
    });
  });
});

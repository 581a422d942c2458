/**
 * The dashboard's HTTP rules through `fetch`: security headers on every answer, the password
 * (HTTP Basic or Bearer, compared in constant time), CSRF on actions, read-only refusals, the
 * base path, bad input as 400 (JSON for API and fragment calls, a message on the page), and
 * failures that show a reference but never the error itself.
 */
import { expect } from 'chai';
import { ConfigError } from '../../core/errors.js';
import { createDashboard, type DashboardOptions } from '../../core/dashboard/index.js';
import { checkAuthorization, digestOf, Signer } from '../../core/dashboard/security.js';
import { Client, json } from './client.js';
import { fixedClock, seeded } from './fixtures.js';

interface Logged {
  msg: string;
  fields?: Record<string, unknown>;
}

function setup(opts: Partial<DashboardOptions> = {}, headers: Record<string, string> = {}) {
  const clock = fixedClock();
  const source = seeded(clock);
  const logged: Logged[] = [];
  const dashboard = createDashboard({ source, now: clock.now, logger: { error: (msg, fields) => logged.push({ msg, fields }) }, ...opts });
  return { source, dashboard, logged, client: new Client(dashboard.fetch, 'http://localhost', headers) };
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('dashboard http', () => {
  it('GET /metrics: the source\'s gauges as Prometheus text behind the same auth; 404 without them, 503 without internals when they fail, 405 for POST', async () => {
    const none = setup();
    expect((await none.dashboard.fetch(new Request('http://localhost/metrics'))).status).to.equal(404);
    let fail = false;
    const { source, dashboard } = setup({ auth: 's3cret' });
    (source as { metrics?: () => Promise<string> }).metrics = async () => {
      if (fail) throw new Error('connect ECONNREFUSED 10.1.2.3:5432 password=hunter2');
      return 'bgtasks_queue_tasks{queue="mail",status="READY"} 3\n';
    };
    expect((await dashboard.fetch(new Request('http://localhost/metrics'))).status).to.equal(401);
    const auth = { authorization: 'Bearer s3cret' };
    const ok = await dashboard.fetch(new Request('http://localhost/metrics', { headers: auth }));
    expect(ok.status).to.equal(200);
    expect(ok.headers.get('content-type')).to.equal('text/plain; version=0.0.4; charset=utf-8');
    expect(await ok.text()).to.equal('bgtasks_queue_tasks{queue="mail",status="READY"} 3\n');
    fail = true;
    const down = await dashboard.fetch(new Request('http://localhost/metrics', { headers: auth }));
    expect(down.status).to.equal(503);
    const text = await down.text();
    expect(text).to.match(/did not answer/);
    expect(text).not.to.match(/ECONNREFUSED|hunter2|10\.1\.2\.3/);
    expect((await dashboard.fetch(new Request('http://localhost/metrics', { method: 'POST', headers: auth }))).status).to.equal(405);
  });

  it('every answer carries the CSP and the other security headers: pages, fragments, API, assets, errors, 401', async () => {
    const { client } = setup();
    const { client: locked } = setup({ auth: 'hunter2' });
    const answers = [
      await client.get('/'),
      await client.get('/tasks?fragment=1'),
      await client.get('/api/overview'),
      await client.get('/assets/style.css'),
      await client.get('/nope'),
      await client.get('/tasks?status=done'),
      await client.postForm('/actions', [['action', 'retry']]),
      await locked.get('/'),
    ];
    expect(answers.map((r) => r.status)).to.deep.equal([200, 200, 200, 200, 404, 400, 403, 401]);
    for (const res of answers) {
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).to.contain("script-src 'self'");
      expect(csp).to.contain("style-src 'self'");
      expect(csp).to.contain("frame-ancestors 'none'");
      expect(csp).to.contain("default-src 'none'");
      expect(csp).not.to.contain('unsafe-inline');
      expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
      expect(res.headers.get('x-frame-options')).to.equal('DENY');
      expect(res.headers.get('referrer-policy')).to.equal('no-referrer');
    }
    expect(answers[0].headers.get('cache-control')).to.equal('no-store');
    expect(await answers[4].text()).to.contain('<h1>Not found</h1>');
  });

  it('serves its assets itself, with a content type, an ETag and a 304 for a fresh copy', async () => {
    const { client } = setup();
    const css = await client.get('/assets/style.css');
    expect(css.headers.get('content-type')).to.equal('text/css; charset=utf-8');
    expect(await css.text()).to.contain('--accent');
    const js = await client.get('/assets/live.js');
    expect(js.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
    const again = await client.get('/assets/live.js', { 'if-none-match': js.headers.get('etag') ?? '' });
    expect(again.status).to.equal(304);
    expect((await client.get('/assets/__proto__')).status).to.equal(404);
    expect((await client.get('/assets/constructor')).status).to.equal(404);
  });

  describe('auth', () => {
    it('asks for HTTP Basic when no credentials are sent, for pages and the API alike', async () => {
      const { client } = setup({ auth: 'hunter2' });
      const res = await client.get('/');
      expect(res.status).to.equal(401);
      expect(res.headers.get('www-authenticate')).to.equal('Basic realm="bgtasks dashboard", charset="UTF-8"');
      expect(await res.text()).not.to.contain('hunter2');
      const api = await client.get('/api/overview');
      expect(api.status).to.equal(401);
      expect((await json(api)).error.code).to.equal('unauthorized');
      expect((await client.get('/assets/live.js')).status).to.equal(401);
    });

    it('lets in Basic with any user name and the right password, or Bearer with the token', async () => {
      expect((await setup({ auth: 'hunter2' }, { authorization: basic('anyone', 'hunter2') }).client.get('/')).status).to.equal(200);
      expect((await setup({ auth: 'hunter2' }, { authorization: basic('', 'hunter2') }).client.get('/tasks')).status).to.equal(200);
      expect((await setup({ auth: 'p:w' }, { authorization: basic('u', 'p:w') }).client.get('/')).status).to.equal(200);
      expect((await setup({ auth: 'hunter2' }, { authorization: 'Bearer hunter2' }).client.get('/api/overview')).status).to.equal(200);
    });

    it('refuses a wrong password, a prefix of it, a longer one and malformed headers', async () => {
      for (const header of [basic('u', 'hunter3'), basic('u', 'hunter'), basic('u', 'hunter22'), 'Bearer nope', 'Basic', 'Digest x', `Basic ${Buffer.from('nocolon').toString('base64')}`]) {
        expect((await setup({ auth: 'hunter2' }, { authorization: header }).client.get('/')).status, header).to.equal(401);
      }
    });

    it('compares digests of equal length, so the length of a guess changes nothing', () => {
      const digest = digestOf('s3cret');
      expect(checkAuthorization('Bearer s3cret', digest)).to.deep.equal({ result: 'ok', scheme: 'bearer' });
      expect(checkAuthorization(`Bearer ${'x'.repeat(10_000)}`, digest).result).to.equal('bad');
      expect(checkAuthorization(null, digest).result).to.equal('missing');
    });

    it('refuses options that cannot work: empty auth, a bad base path, a missing source', () => {
      const source = seeded();
      expect(() => createDashboard({ source, auth: '' })).to.throw(ConfigError, /auth must be a non-empty string/);
      expect(() => createDashboard({ source, basePath: 'admin' })).to.throw(ConfigError, /basePath must be an absolute URL path/);
      expect(() => createDashboard({ source, basePath: '/a/../b' })).to.throw(ConfigError);
      expect(() => createDashboard({ source, refreshSeconds: 0 })).to.throw(ConfigError, /refreshSeconds/);
      expect(() => createDashboard({} as DashboardOptions)).to.throw(ConfigError, /needs a `source`/);
    });
  });

  describe('CSRF', () => {
    it('sets an HttpOnly SameSite=Strict cookie and puts a signed token in action forms', async () => {
      const { client } = setup();
      const res = await client.get('/tasks');
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith('bgtasks_csrf='));
      expect(cookie).to.match(/^bgtasks_csrf=[A-Za-z0-9_-]{24}; Path=\/; HttpOnly; SameSite=Strict$/);
      const token = /name="csrf" value="([^"]+)"/.exec(await res.text())?.[1];
      expect(token).to.be.a('string').and.not.equal(client.cookies.get('bgtasks_csrf'));
    });

    it('acts with the token and its cookie, and refuses a missing, wrong or foreign token', async () => {
      const { client, source, dashboard } = setup();
      const token = await client.csrf();
      expect((await client.postForm('/actions', [['action', 'runNow'], ['id', '2']])).status).to.equal(403);
      expect((await client.postForm('/actions', [['action', 'runNow'], ['id', '2'], ['csrf', `${token}x`]])).status).to.equal(403);
      const other = setup().client;
      const foreign = await other.csrf();
      expect((await client.postForm('/actions', [['action', 'runNow'], ['id', '2'], ['csrf', foreign]])).status).to.equal(403);
      // The right token without its cookie (a forged cross-site post carries no SameSite=Strict cookie)
      const bare = new Client(dashboard.fetch);
      expect((await bare.postForm('/actions', [['action', 'runNow'], ['id', '2'], ['csrf', token]])).status).to.equal(403);
      expect(source.calls).not.to.include('runNow');
      const ok = await client.postForm('/actions', [['action', 'runNow'], ['id', '2'], ['csrf', token]]);
      expect(ok.status).to.equal(303);
      expect(source.calls).to.include('runNow');
    });

    it('refuses a cross-site POST even with a valid token', async () => {
      const { client, source } = setup();
      const token = await client.csrf();
      const res = await client.postForm('/actions', [['action', 'runNow'], ['id', '2'], ['csrf', token]], { 'sec-fetch-site': 'cross-site' });
      expect(res.status).to.equal(403);
      expect(source.calls).not.to.include('runNow');
    });

    it('signs with a shared secret, so two processes with the same secret accept each other\'s tokens', () => {
      expect(new Signer('k').mac('csrf', 'n')).to.equal(new Signer('k').mac('csrf', 'n'));
      expect(new Signer('k').mac('csrf', 'n')).not.to.equal(new Signer('other').mac('csrf', 'n'));
      expect(new Signer(null).mac('csrf', 'n')).not.to.equal(new Signer(null).mac('csrf', 'n'));
      const s = new Signer('k');
      expect(s.unseal('flash', s.seal('flash', 'abc'))).to.equal('abc');
      expect(s.unseal('flash', `${s.seal('flash', 'abc')}x`)).to.equal(null);
      expect(s.unseal('csrf', s.seal('flash', 'abc'))).to.equal(null);
    });
  });

  describe('read-only', () => {
    it('refuses a forged action POST with 403 and changes nothing, even with a token made for a writable twin', async () => {
      const { client, source } = setup({ readOnly: true, secret: 'shared' });
      const twin = setup({ secret: 'shared' }).client;
      const token = await twin.csrf();
      for (const [k, v] of twin.cookies) client.cookies.set(k, v);
      const res = await client.postForm('/actions', [['action', 'delete'], ['id', '5'], ['csrf', token]]);
      expect(res.status).to.equal(403);
      expect(await res.text()).to.contain('This dashboard is read-only');
      const api = await client.postJson('/api/actions/delete', { ids: ['5'] }, { 'x-csrf-token': token });
      expect(api.status).to.equal(403);
      expect((await json(api)).error.code).to.equal('read_only');
      expect((await client.get('/confirm?action=delete')).status).to.equal(403);
      expect(source.calls.filter((c) => ['retry', 'cancel', 'delete', 'runNow'].includes(c))).to.deep.equal([]);
      expect(source.tasks.map((t) => t.id)).to.include('5');
    });

    it('hands out no CSRF cookie and no token', async () => {
      const { client } = setup({ readOnly: true });
      const res = await client.get('/tasks');
      expect(res.headers.getSetCookie()).to.deep.equal([]);
      expect(await json(client.get('/api/csrf'))).to.deep.equal({ token: null, readOnly: true });
    });
  });

  describe('base path', () => {
    it('serves every link under the base path and answers 404 outside it', async () => {
      const { client } = setup({ basePath: '/admin/queue/' });
      const text = await (await client.get('/admin/queue/tasks')).text();
      expect(text).to.contain('<a href="/admin/queue/tasks/5">#5</a>');
      expect(text).to.contain('<form id="task-actions" method="post" action="/admin/queue/actions">');
      expect(text).to.contain('src="/admin/queue/assets/live.js?v=');
      expect((await client.get('/admin/queue')).status).to.equal(200);
      expect((await client.get('/admin/queue/')).status).to.equal(200);
      expect((await client.get('/tasks')).status).to.equal(404);
      expect((await client.get('/admin/queuex')).status).to.equal(404);
      const cookie = (await new Client(setup({ basePath: '/admin/queue' }).dashboard.fetch).get('/admin/queue/')).headers.getSetCookie()[0];
      expect(cookie).to.contain('Path=/admin/queue;');
    });
  });

  describe('bad input', () => {
    it('a bad filter on the page: 400 with the message above the form, which keeps the bad value', async () => {
      const { client } = setup();
      const res = await client.get('/tasks?status=done&name=x');
      expect(res.status).to.equal(400);
      const text = await res.text();
      expect(text).to.contain('<div class="error-box" role="alert">unknown status &#39;done&#39;: expected ready, running, successful or failed</div>');
      expect(text).to.contain('<input type="text" name="name" value="x"');
      expect(text).not.to.match(/at .*\.ts:\d+/);
    });

    it('bad values in API and fragment calls: 400 with a JSON error naming the value', async () => {
      const { client } = setup();
      const cases: Array<[string, RegExp]> = [
        ['/api/tasks?status=done', /unknown status 'done'/],
        ['/api/tasks?from=yesterday', /from is not a time: 'yesterday'/],
        ['/api/tasks?limit=-5', /limit must be a whole number from 1 to 500, not '-5'/],
        ['/api/tasks?limit=99999', /limit must be from 1 to 500, not 99999/],
        ['/api/tasks?cursor=%3Cx%3E', /bad cursor/],
        ['/api/tasks?cursor=bm90LWpzb24', /bad cursor: not one this source made/],
        ['/tasks?fragment=1&to=2030-13-01', /to is not a valid date: '2030-13-01'/],
        ['/api/failed?since=-1', /since must be a whole number of seconds/],
        ['/api/count?status=nope', /unknown status 'nope'/],
      ];
      for (const [path, message] of cases) {
        const res = await client.get(path);
        expect(res.status, path).to.equal(400);
        expect(res.headers.get('content-type'), path).to.equal('application/json; charset=utf-8');
        const body = await json(res);
        expect(body.error.code, path).to.equal('bad_request');
        expect(body.error.message, path).to.match(message);
      }
    });

    it('a cursor the source cannot read shows on the page as a message, not a failure', async () => {
      const { client } = setup();
      const res = await client.get('/tasks?cursor=bm90LWpzb24');
      expect(res.status).to.equal(400);
      expect(await res.text()).to.contain('bad cursor: not one this source made');
    });

    it('refuses other methods, oversized bodies, and forms of the wrong type', async () => {
      const { client } = setup();
      const del = await client.send('DELETE', '/tasks');
      expect(del.status).to.equal(405);
      expect(del.headers.get('allow')).to.equal('GET, HEAD, POST');
      const token = await client.csrf();
      const big = await client.postForm('/actions', [['csrf', token], ['action', 'retry'], ['pad', 'x'.repeat(1024 * 1024 + 1)]]);
      expect(big.status).to.equal(413);
      const json = await client.postJson('/actions', { action: 'retry' });
      expect(json.status).to.equal(415);
      const head = await client.send('HEAD', '/');
      expect(head.status).to.equal(200);
      expect(await head.text()).to.equal('');
    });
  });

  describe('failures', () => {
    it('a source failure: 500 with a reference; the error, its stack and the URL with its password go only to the logger', async () => {
      const { client, source, logged } = setup();
      source.failNext = new Error('connect ECONNREFUSED postgres://app:hunter2@db:5432/app');
      const res = await client.get('/');
      expect(res.status).to.equal(500);
      const text = await res.text();
      expect(text).to.match(/The dashboard could not complete this request\. The error is in the server log \(reference [0-9a-f]{8}\)\./);
      expect(text).not.to.contain('hunter2');
      expect(text).not.to.contain('ECONNREFUSED');
      const reference = /reference ([0-9a-f]{8})/.exec(text)?.[1];
      expect(logged).to.have.length(1);
      expect(logged[0].fields?.reference).to.equal(reference);
      expect(String(logged[0].fields?.error)).to.contain('ECONNREFUSED');
    });

    it('the same for API and fragment calls, as JSON', async () => {
      const { client, source } = setup();
      for (const path of ['/api/overview', '/tasks?fragment=1']) {
        source.failNext = new Error('secret detail');
        const res = await client.get(path);
        expect(res.status).to.equal(500);
        const body = await json(res);
        expect(body.error.code).to.equal('internal');
        expect(JSON.stringify(body)).not.to.contain('secret detail');
      }
    });

    it('a logger that throws does not turn the 500 into a crash', async () => {
      const clock = fixedClock();
      const source = seeded(clock);
      const dashboard = createDashboard({ source, now: clock.now, logger: { error: () => { throw new Error('log down'); } } });
      source.failNext = new Error('boom');
      expect((await dashboard.fetch(new Request('http://localhost/'))).status).to.equal(500);
    });
  });
});

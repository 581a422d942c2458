/**
 * `serveDashboard`: its own HTTP server for `bgtasks dashboard`. It refuses a non-loopback host
 * without a password (with an error that says what to do), answers only to loopback host names
 * while it has no password, and closes cleanly.
 */
import { expect } from 'chai';
import { request } from 'node:http';
import { BgtasksError, ConfigError } from '../../core/errors.js';
import { isLoopback, serveDashboard, type DashboardServer } from '../../core/dashboard/index.js';
import { seeded } from './fixtures.js';

/** A GET with a chosen Host header (fetch() does not let a test set one). */
function get(url: string, host?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveDashboard', () => {
  const open: DashboardServer[] = [];
  afterEach(async () => {
    while (open.length) await open.pop()?.close();
  });

  it('knows loopback addresses', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', 'app.localhost']) expect(isLoopback(h), h).to.equal(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', 'localhost.example.com', '128.0.0.1']) expect(isLoopback(h), h).to.equal(false);
  });

  it('refuses a non-loopback host without auth, naming the fix, and listens on nothing', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
      let err: unknown = null;
      try {
        open.push(await serveDashboard({ source: seeded(), host, port: 0 }));
      } catch (e) {
        err = e;
      }
      expect(err, host).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.contain(`refusing to serve the dashboard on ${host} without a password`);
      expect((err as Error).message).to.contain('BGTASKS_DASHBOARD_AUTH');
      expect((err as Error).message).to.contain('127.0.0.1');
    }
    expect(open).to.have.length(0);
  });

  it('refuses a read-only dashboard on a public host without auth too (task arguments are data)', async () => {
    let err: unknown = null;
    await serveDashboard({ source: seeded(), host: '0.0.0.0', port: 0, readOnly: true }).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(ConfigError);
  });

  it('refuses a bad port or host', async () => {
    for (const [host, port] of [['127.0.0.1', 70000], ['127.0.0.1', -1], ['127.0.0.1', 1.5], ['', 0], ['a b', 0]] as Array<[string, number]>) {
      let err: unknown = null;
      await serveDashboard({ source: seeded(), host, port }).catch((e: unknown) => (err = e));
      expect(err, `${host}:${port}`).to.be.instanceOf(ConfigError);
    }
  });

  it('serves on any host with auth', async () => {
    const s = await serveDashboard({ source: seeded(), host: '0.0.0.0', port: 0, auth: 'hunter2' });
    open.push(s);
    expect(s.url).to.match(/^http:\/\/0\.0\.0\.0:\d+\/$/);
    const port = new URL(s.url).port;
    expect((await get(`http://127.0.0.1:${port}/`)).status).to.equal(401);
  });

  it('without auth on loopback: answers to loopback names only (DNS rebinding), and says why', async () => {
    const s = await serveDashboard({ source: seeded(), port: 0 });
    open.push(s);
    expect(s.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const port = new URL(s.url).port;
    expect((await get(s.url)).status).to.equal(200);
    expect((await get(s.url, `localhost:${port}`)).status).to.equal(200);
    const evil = await get(s.url, `evil.example:${port}`);
    expect(evil.status).to.equal(421);
    expect(evil.body).to.contain('answers only to localhost addresses');
    expect(evil.headers['content-security-policy']).to.be.a('string');
  });

  it('redirects / to the base path, reports a port in use, and closes', async () => {
    const s = await serveDashboard({ source: seeded(), port: 0, basePath: '/jobs' });
    open.push(s);
    const port = Number(new URL(s.url).port);
    expect(s.url).to.equal(`http://127.0.0.1:${port}/jobs/`);
    const root = await get(`http://127.0.0.1:${port}/`);
    expect(root.status).to.equal(302);
    expect(root.headers.location).to.equal('/jobs/');
    let err: unknown = null;
    await serveDashboard({ source: seeded(), port }).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(BgtasksError);
    expect((err as Error).message).to.equal(`cannot serve the dashboard on 127.0.0.1:${port}: the port is in use (choose another port)`);
    await s.close();
    open.pop();
    await get(`http://127.0.0.1:${port}/jobs/`).then(
      () => expect.fail('the server still answers after close()'),
      (e: NodeJS.ErrnoException) => expect(e.code).to.equal('ECONNREFUSED'),
    );
  });
});

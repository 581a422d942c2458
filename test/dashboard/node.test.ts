/**
 * `dashboard.handle(req, res, next?)` on a real node:http server: unmounted under a base path,
 * mounted the way Express mounts (path stripped from req.url, kept in originalUrl and baseUrl),
 * after a body parser consumed the form, and with paths outside the dashboard passed to next().
 */
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDashboard, type Dashboard } from '../../core/dashboard/index.js';
import { Client } from './client.js';
import { fixedClock, NOW, seeded } from './fixtures.js';
import type { MemorySource } from './memory-source.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(handler: Handler): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function close(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const viaNetwork = (r: Request) => fetch(r, { redirect: 'manual' });

describe('dashboard handle() on node:http', () => {
  let server: Server | null = null;
  let source: MemorySource;
  let dashboard: Dashboard;

  function make(basePath?: string) {
    const clock = fixedClock();
    source = seeded(clock);
    dashboard = createDashboard({ source, basePath, now: clock.now, logger: { error: () => undefined } });
  }

  afterEach(async () => {
    if (server) await close(server);
    server = null;
  });

  it('unmounted: serves under its base path, hands other paths to next(), and 404s them without next', async () => {
    make('/admin/queue');
    const passed: string[] = [];
    const s = await listen((req, res) => {
      if (req.url?.startsWith('/nothing')) {
        void dashboard.handle(req, res);
        return;
      }
      void dashboard.handle(req, res, () => {
        passed.push(req.url ?? '');
        res.end('app');
      });
    });
    server = s.server;
    const client = new Client(viaNetwork, s.origin);
    const page = await client.get('/admin/queue/tasks');
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-security-policy')).to.contain("script-src 'self'");
    expect(await page.text()).to.contain('<a href="/admin/queue/tasks/5">#5</a>');
    expect(await (await client.get('/other')).text()).to.equal('app');
    expect(passed).to.deep.equal(['/other']);
    expect((await client.get('/nothing')).status).to.equal(404);
  });

  it('mounted like Express app.use("/admin", handle): links and cookies use the mount path; forms post and redirect back', async () => {
    make();
    const s = await listen((req, res) => {
      const r = req as IncomingMessage & { originalUrl?: string; baseUrl?: string };
      if (!req.url?.startsWith('/admin')) {
        res.statusCode = 404;
        res.end();
        return;
      }
      // What Express does for a mount: keep the original, strip the mount path.
      r.originalUrl = req.url;
      r.baseUrl = '/admin';
      req.url = req.url.slice('/admin'.length) || '/';
      void dashboard.handle(req, res, () => res.end('next'));
    });
    server = s.server;
    const client = new Client(viaNetwork, s.origin);
    const first = await client.get('/admin/tasks?status=ready');
    expect(first.headers.getSetCookie()[0]).to.contain('Path=/admin;');
    const text = await first.text();
    expect(text).to.contain('<form id="task-actions" method="post" action="/admin/actions">');
    expect(text).to.contain('<input type="hidden" name="returnTo" value="/admin/tasks?status=ready">');
    const token = /name="csrf" value="([^"]+)"/.exec(text)?.[1] ?? '';
    const res = await client.postForm('/admin/actions', [['csrf', token], ['action', 'runNow'], ['id', '2'], ['returnTo', '/admin/tasks?status=ready']]);
    expect(res.status).to.equal(303);
    expect(res.headers.get('location')).to.equal('/admin/tasks?status=ready');
    expect(source.tasks.find((t) => t.id === '2')?.runAt).to.equal(NOW);
    expect(await (await client.get('/admin/tasks?status=ready')).text()).to.contain('Run now: 1 task moved to now.');
  });

  it('reads a form a body parser already consumed (req.body), as after express.urlencoded()', async () => {
    make();
    const s = await listen((req, res) => {
      if (req.method !== 'POST') {
        void dashboard.handle(req, res);
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const parsed: Record<string, string | string[]> = {};
        for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString())) {
          const had = parsed[k];
          parsed[k] = had === undefined ? v : ([] as string[]).concat(had, v);
        }
        (req as IncomingMessage & { body?: unknown }).body = parsed;
        void dashboard.handle(req, res);
      });
    });
    server = s.server;
    const client = new Client(viaNetwork, s.origin);
    const token = await client.csrf('/tasks');
    const res = await client.postForm('/actions', [['csrf', token], ['action', 'delete'], ['id', '5'], ['id', '6']]);
    expect(res.status).to.equal(303);
    expect(source.tasks.map((t) => t.id)).not.to.include.members(['5', '6']);
  });

  it('sends each Set-Cookie as its own header, answers HEAD without a body, and refuses a large streamed body with 413', async () => {
    make();
    const s = await listen((req, res) => void dashboard.handle(req, res));
    server = s.server;
    const client = new Client(viaNetwork, s.origin);
    const token = await client.csrf('/tasks');
    await client.postForm('/actions', [['csrf', token], ['action', 'retry'], ['id', '5']]);
    const page = await client.get('/tasks');
    // the flash is consumed (Max-Age=0) on the page view that shows it
    expect(page.headers.getSetCookie().some((c) => c.startsWith('bgtasks_flash=;'))).to.equal(true);
    const head = await client.send('HEAD', '/');
    expect(head.status).to.equal(200);
    expect(await head.text()).to.equal('');
    const big = await client.postForm('/actions', [['csrf', token], ['action', 'retry'], ['pad', 'x'.repeat(1_100_000)]]);
    expect(big.status).to.equal(413);
    // the server is still fine afterwards
    expect((await client.get('/')).status).to.equal(200);
  });
});

/**
 * The Node adapter behind `dashboard.handle(req, res, next?)`: turns an IncomingMessage into a
 * fetch Request, runs it, and writes the Response back. It copes with how frameworks hand over a
 * request: Express strips its mount path from `req.url` (kept in `originalUrl` and `baseUrl`),
 * and a body parser that ran first has already consumed the body (kept in `req.body`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { App } from './context.js';
import { dispatch } from './dispatch.js';

type FrameworkRequest = IncomingMessage & { originalUrl?: unknown; baseUrl?: unknown; body?: unknown };

/** A body another middleware parsed already, written back as the text it came from. */
function parsedBody(body: unknown, contentType: string): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  if (typeof body !== 'object') return undefined;
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      for (const item of Array.isArray(v) ? v : [v]) if (typeof item === 'string' || typeof item === 'number') p.append(k, String(item));
    }
    return p.toString();
  }
  return JSON.stringify(body);
}

/** The base path and full URL path of a request, with or without an Express mount. */
export function locate(app: Pick<App, 'base'>, req: FrameworkRequest): { base: string; path: string } {
  if (typeof req.originalUrl === 'string') {
    // Express: originalUrl is what the browser asked for; baseUrl is the mount path.
    const mount = typeof req.baseUrl === 'string' ? req.baseUrl.replace(/\/+$/, '') : '';
    return { base: app.base === '' ? mount : app.base, path: req.originalUrl };
  }
  return { base: app.base, path: req.url ?? '/' };
}

export function toRequest(req: FrameworkRequest, path: string): Request {
  const secure = (req.socket as TLSSocket | undefined)?.encrypted === true;
  // The host is never used for routing or links (they are all paths), so a fixed origin keeps a
  // malformed Host header from breaking URL parsing.
  const url = new URL(path.startsWith('/') ? path : `/${path}`, secure ? 'https://localhost' : 'http://localhost');
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith(':') || v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) headers.append(k, item);
  }
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') return new Request(url, { method, headers });
  const already = req.readableEnded ? parsedBody(req.body, headers.get('content-type') ?? '') : undefined;
  if (already !== undefined) {
    headers.delete('content-length');
    return new Request(url, { method, headers, body: already });
  }
  // Streamed, so the size limit in readBody applies before anything is buffered.
  const body = Readable.toWeb(req) as ReadableStream<Uint8Array>;
  return new Request(url, { method, headers, body, duplex: 'half' } as RequestInit);
}

export async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, key) => {
    if (key !== 'set-cookie') res.setHeader(key, value);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length) res.setHeader('set-cookie', cookies);
  const body = response.body ? Buffer.from(await response.arrayBuffer()) : undefined;
  await new Promise<void>((resolve) => res.end(body, resolve));
}

export async function handleNode(app: App, req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): Promise<void> {
  try {
    const { base, path } = locate(app, req as FrameworkRequest);
    const request = toRequest(req as FrameworkRequest, path);
    const response = await dispatch(app, request, base);
    if (response === null) {
      if (next) return next();
      await writeResponse(res, new Response('Not found', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } }));
      return;
    }
    await writeResponse(res, response);
    // A body the route never read (a refused POST) is dropped rather than buffered.
    if (!req.readableEnded && request.body && !request.body.locked) await request.body.cancel().catch(() => undefined);
  } catch (err) {
    try {
      app.logger.error('dashboard could not answer a request', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    } catch {
      // Nothing more to do: the response below is all that is left.
    }
    if (!res.headersSent) {
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('The dashboard could not answer this request; the error is in the server log.');
    } else if (!res.writableEnded) {
      res.end();
    }
  }
}

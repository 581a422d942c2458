/**
 * One request through the dashboard: is it under the base path, is it signed in, which CSRF nonce
 * it carries, which route answers it, and how a failure is answered without showing internals
 * (the user gets a reference, the injected logger gets the error).
 */
import { randomBytes } from 'node:crypto';
import { isErrorKind } from '../errors.js';
import { routeApi } from './api.js';
import { CSRF_COOKIE, type App, type Ctx } from './context.js';
import { html } from './html.js';
import { renderPage, type View } from './layout.js';
import { HttpError, htmlResponse, jsonError } from './responses.js';
import { routePage } from './routes.js';
import { checkAuthorization, isNonce, newNonce, parseCookies, serializeCookie, type AuthScheme } from './security.js';

const wantsJson = (ctx: Pick<Ctx, 'rel' | 'fragment'>): boolean => ctx.fragment || ctx.rel === '/api' || ctx.rel.startsWith('/api/');

function withCookies(res: Response, cookies: string[]): Response {
  for (const c of cookies) res.headers.append('set-cookie', c);
  return res;
}

function unauthorized(rel: string): Response {
  const challenge = { 'www-authenticate': 'Basic realm="bgtasks dashboard", charset="UTF-8"' };
  if (rel.startsWith('/api/')) return jsonError(401, 'unauthorized', 'sign in: HTTP Basic (any user name) or Authorization: Bearer <token>', challenge);
  return htmlResponse(401, '<!doctype html><title>Sign in</title><p>Sign in to see the bgtasks dashboard.</p>', challenge);
}

const HEADINGS: Record<number, string> = { 403: 'Refused', 404: 'Not found', 405: 'Not allowed', 413: 'Too large', 415: 'Unsupported form' };

/** Hides internals: the user gets a reference, the log gets the error. */
function failure(ctx: Ctx, err: unknown): Response {
  if (err instanceof HttpError || isErrorKind(err, 'ValidationError')) {
    const status = err instanceof HttpError ? err.status : 400;
    const code = err instanceof HttpError ? err.code : 'bad_request';
    const message = (err as Error).message;
    if (wantsJson(ctx)) return jsonError(status, code, message);
    const heading = HEADINGS[status] ?? 'Bad request';
    return htmlResponse(status, renderPage(ctx.view, { heading, nav: 'none', live: html`` }, { error: message }));
  }
  const reference = randomBytes(4).toString('hex');
  try {
    ctx.app.logger.error('dashboard request failed', {
      reference,
      method: ctx.request.method,
      path: ctx.url.pathname,
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
  } catch {
    // A logger that throws must not turn a 500 into a crash.
  }
  const message = `The dashboard could not complete this request. The error is in the server log (reference ${reference}).`;
  if (wantsJson(ctx)) return jsonError(500, 'internal', message);
  return htmlResponse(500, renderPage(ctx.view, { heading: 'Something went wrong', nav: 'none', live: html`` }, { error: message }));
}

/** The footer line; a source that cannot say must not cost the page. */
function describe(app: App): View['source'] {
  try {
    return app.source.describe();
  } catch {
    return { database: '(database unknown)' };
  }
}

const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * `GET /metrics`: the source's queue gauges for Prometheus, behind the same auth as the pages (a
 * scraper sends `Authorization: Bearer <token>`). Not a page: no CSRF, no layout.
 */
async function metricsResponse(app: App, method: string): Promise<Response> {
  if (method === 'POST') return jsonError(405, 'method_not_allowed', 'GET /metrics only', { allow: 'GET, HEAD' });
  const metrics = app.source.metrics;
  if (!metrics) return jsonError(404, 'not_found', 'this dashboard has no metrics (its source gives none)');
  try {
    const text = await metrics.call(app.source);
    return new Response(text, { status: 200, headers: { 'content-type': METRICS_TYPE, 'cache-control': 'no-store' } });
  } catch {
    // Not the driver's message: it may name the server; the dashboard's log is not the place either (every scrape).
    return new Response('bgtasks: the database did not answer the queue-depth query; try again later\n', {
      status: 503,
      headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
    });
  }
}

/** Answers one request, or null when its path is outside `base`. */
export async function dispatch(app: App, request: Request, base: string): Promise<Response | null> {
  const url = new URL(request.url);
  const path = url.pathname;
  if (base !== '' && path !== base && !path.startsWith(`${base}/`)) return null;
  const rel = path.slice(base.length) || '/';
  let authScheme: AuthScheme | null = null;
  if (app.authDigest) {
    const auth = checkAuthorization(request.headers.get('authorization'), app.authDigest);
    if (auth.result !== 'ok') return unauthorized(rel);
    authScheme = auth.scheme;
  }
  const cookies = parseCookies(request.headers.get('cookie'));
  const secure = url.protocol === 'https:';
  const setCookies: string[] = [];
  const cookiePath = base || '/';
  let nonce = cookies.get(CSRF_COOKIE);
  if (!isNonce(nonce)) {
    nonce = newNonce();
    // Handed out on reads, where forms are rendered; a POST without it fails the CSRF check.
    if (!app.readOnly && request.method === 'GET') setCookies.push(serializeCookie(CSRF_COOKIE, nonce, { path: cookiePath, secure }));
  }
  const view: View = {
    base,
    title: app.title,
    readOnly: app.readOnly,
    csrfToken: app.readOnly ? null : app.signer.mac('csrf', nonce),
    nowMs: app.now(),
    refreshMs: app.refreshMs,
    source: describe(app),
  };
  const ctx: Ctx = { app, request, url, rel, cookies, nonce, setCookies, secure, view, fragment: url.searchParams.get('fragment') === '1', authScheme };
  let response: Response;
  try {
    if (!['GET', 'HEAD', 'POST'].includes(request.method)) {
      response = jsonError(405, 'method_not_allowed', `method ${request.method} is not allowed here`, { allow: 'GET, HEAD, POST' });
    } else if (rel === '/metrics') {
      response = await metricsResponse(app, request.method);
    } else if (rel === '/api' || rel.startsWith('/api/')) {
      response = await routeApi(ctx);
    } else {
      response = await routePage(ctx);
    }
  } catch (err) {
    response = failure(ctx, err);
  }
  if (request.method === 'HEAD') response = new Response(null, { status: response.status, headers: response.headers });
  return withCookies(response, ctx.setCookies);
}


/**
 * The HTML side of the dashboard: one function per page (GET, or `?fragment=1` for its live
 * region alone), the confirmation page of filter actions, the action form's POST (which answers
 * with a redirect and leaves what changed in a signed flash cookie), and the static assets.
 */
import { isErrorKind, ValidationError } from '../errors.js';
import { confirmPage, encodeFlash, parseAction, parseIds, runAction, safeReturnTo, summarize } from './actions.js';
import { ASSETS } from './assets/index.js';
import { FLASH_COOKIE, takeFlash, type Ctx } from './context.js';
import { renderPage, type FlashMessage, type PageParts } from './layout.js';
import { DEFAULT_FAILED_WINDOW, failedPage } from './pages/failed.js';
import { overviewPage } from './pages/overview.js';
import { schedulesPage } from './pages/schedules.js';
import { taskNotFoundPage, taskPage } from './pages/task.js';
import { tasksPage } from './pages/tasks.js';
import { workersPage } from './pages/workers.js';
import { narrowForAction, parseFilter, parseTaskQuery, type TaskQuery } from './query.js';
import { assetResponse, HttpError, htmlResponse, readBody, redirect } from './responses.js';
import { serializeCookie } from './security.js';
import type { ActionTarget, FilterChoices, TaskPage } from './source.js';

function page(ctx: Ctx, parts: PageParts, status = 200, error: string | null = null): Response {
  if (ctx.fragment) return htmlResponse(status, parts.live.value);
  return htmlResponse(status, renderPage(ctx.view, parts, { flash: takeFlash(ctx), error }));
}

/** The path and query of this page without `fragment`, for "come back here" after an action. */
function here(ctx: Ctx): string {
  const p = new URLSearchParams(ctx.url.searchParams);
  p.delete('fragment');
  const q = p.toString();
  return `${ctx.url.pathname}${q ? `?${q}` : ''}`;
}

/** `since` of the Failed page: whole seconds back from now, 0 for every kept result. */
export function parseWindow(v: string | null): number {
  if (v === null || v === '') return DEFAULT_FAILED_WINDOW;
  if (!/^\d{1,9}$/.test(v)) throw new ValidationError(`since must be a whole number of seconds (0 for all), not '${v}'`);
  return Number(v);
}

async function tasks(ctx: Ctx): Promise<Response> {
  const raw = ctx.url.searchParams;
  let query: TaskQuery | null = null;
  let result: TaskPage | null = null;
  let error: string | null = null;
  try {
    query = parseTaskQuery(raw);
    result = await ctx.app.source.listTasks(query);
  } catch (err) {
    // On the full page a bad value is shown above the form that holds it, so it can be fixed.
    if (ctx.fragment || !isErrorKind(err, 'ValidationError')) throw err;
    error = (err as Error).message;
  }
  let choices: FilterChoices | null = null;
  if (!ctx.fragment) {
    // Suggestions are a convenience: a failure to read them must not cost the page.
    choices = await ctx.app.source.filterChoices().catch((err: unknown) => {
      ctx.app.logger.warn?.('dashboard could not read filter choices', { error: err instanceof Error ? err.message : String(err) });
      return null;
    });
  }
  const parts = tasksPage(ctx.view, { raw, query: result ? query : null, page: result, choices, returnTo: here(ctx) });
  return page(ctx, parts, error ? 400 : 200, error);
}

async function task(ctx: Ctx, encoded: string): Promise<Response> {
  let id: string;
  try {
    id = decodeURIComponent(encoded);
  } catch {
    throw new ValidationError('malformed task id in the URL');
  }
  const detail = await ctx.app.source.getTask(id);
  return detail ? page(ctx, taskPage(ctx.view, detail)) : page(ctx, taskNotFoundPage(id), 404);
}

async function confirm(ctx: Ctx): Promise<Response> {
  if (ctx.app.readOnly) throw new HttpError(403, 'This dashboard is read-only: actions are turned off.', 'read_only');
  const params = ctx.url.searchParams;
  const action = parseAction(params.get('action'));
  const filter = parseFilter(params);
  const narrowed = narrowForAction(action, filter);
  const matching = narrowed ? await ctx.app.source.countTasks(narrowed) : 0;
  return page(ctx, confirmPage(ctx.view, { action, filter, narrowed, matching }));
}

function setFlash(ctx: Ctx, flash: FlashMessage): void {
  const sealed = ctx.app.signer.seal('flash', encodeFlash(flash));
  ctx.setCookies.push(serializeCookie(FLASH_COOKIE, sealed, { path: ctx.view.base || '/', secure: ctx.secure, maxAgeSeconds: 120 }));
}

/** Checks shared by every action request, page or API: read-only, cross-site, CSRF. */
export function guardAction(ctx: Ctx, token: string | null): void {
  if (ctx.app.readOnly) throw new HttpError(403, 'This dashboard is read-only: actions are turned off.', 'read_only');
  // Browsers say where a request comes from; no other site has any business posting here.
  if (ctx.request.headers.get('sec-fetch-site') === 'cross-site') throw new HttpError(403, 'cross-site requests are refused', 'cross_site');
  // A Bearer token is never attached by a browser on its own, so such a request cannot be forged.
  if (ctx.authScheme === 'bearer') return;
  if (!token || !ctx.app.signer.verify('csrf', ctx.nonce, token)) {
    throw new HttpError(403, 'The form has expired or cookies are blocked (CSRF check failed): reload the page and try again.', 'csrf');
  }
}

async function postAction(ctx: Ctx): Promise<Response> {
  if (ctx.app.readOnly) throw new HttpError(403, 'This dashboard is read-only: actions are turned off.', 'read_only');
  const type = ctx.request.headers.get('content-type') ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) throw new HttpError(415, 'actions are posted as a form (application/x-www-form-urlencoded)', 'unsupported_media_type');
  const form = new URLSearchParams(await readBody(ctx.request));
  guardAction(ctx, form.get('csrf'));
  const returnTo = safeReturnTo(ctx.view, form.get('returnTo'));
  const action = parseAction(form.get('action'));
  let target: ActionTarget;
  let expected: number | undefined;
  if (form.get('scope') === 'filter') {
    const narrowed = narrowForAction(action, parseFilter(form));
    if (!narrowed) {
      setFlash(ctx, { kind: 'error', text: 'Nothing to do: the filter selects no task this action applies to.', lines: [] });
      return redirect(returnTo);
    }
    target = { filter: narrowed };
    const e = Number(form.get('expected'));
    if (Number.isSafeInteger(e) && e >= 0) expected = e;
  } else {
    const ids = parseIds(form.getAll('id'));
    if (!ids.length) {
      setFlash(ctx, { kind: 'error', text: 'No task ticked: tick the tasks to act on first.', lines: [] });
      return redirect(returnTo);
    }
    target = { ids };
  }
  const result = await runAction(ctx.app.source, action, target);
  setFlash(ctx, summarize(result, expected));
  return redirect(returnTo);
}

function asset(ctx: Ctx): Response {
  const name = ctx.rel.slice('/assets/'.length);
  if (!Object.hasOwn(ASSETS, name)) throw new HttpError(404, 'no such asset', 'not_found');
  const a = ASSETS[name];
  return assetResponse(a.body, a.contentType, a.hash, ctx.request.headers.get('if-none-match'));
}

export async function routePage(ctx: Ctx): Promise<Response> {
  const { rel, view } = ctx;
  const source = ctx.app.source;
  if (rel.startsWith('/assets/')) return asset(ctx);
  if (ctx.request.method === 'POST') {
    if (rel === '/actions') return postAction(ctx);
    throw new HttpError(405, 'only action forms are posted (to /actions)', 'method_not_allowed');
  }
  switch (rel) {
    case '/':
      return page(ctx, overviewPage(view, await source.overview()));
    case '/tasks':
      return tasks(ctx);
    case '/failed': {
      const windowSeconds = parseWindow(ctx.url.searchParams.get('since'));
      const since = windowSeconds ? new Date(view.nowMs - windowSeconds * 1000) : null;
      return page(ctx, failedPage(view, windowSeconds, await source.failureGroups({ since, limit: 200 }), since));
    }
    case '/schedules':
      return page(ctx, schedulesPage(view, await source.schedules()));
    case '/workers':
      return page(ctx, workersPage(view, await source.workers()));
    case '/confirm':
      return confirm(ctx);
  }
  const m = /^\/tasks\/([^/]+)$/.exec(rel);
  if (m) return task(ctx, m[1]);
  throw new HttpError(404, `no dashboard page at ${ctx.url.pathname}`, 'not_found');
}

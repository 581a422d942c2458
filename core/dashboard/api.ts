/**
 * The JSON API under `<base>/api/`: the pages' reads and actions for scripts and tests. Reads
 * are GETs with the Tasks page's query parameters; actions are POSTs of JSON under the same
 * rules as the forms (sign-in, read-only, CSRF: send the token from `GET api/csrf` in an
 * `X-CSRF-Token` header with the cookie it sets; a request signed in with a Bearer token needs
 * none). Times are ISO strings, ids strings. Errors are `{"error": {"code", "message"}}`.
 */
import { ValidationError } from '../errors.js';
import { parseAction, parseIds, runAction } from './actions.js';
import type { Ctx } from './context.js';
import { narrowForAction, parseFilter, parseTaskQuery } from './query.js';
import { HttpError, jsonError, jsonResponse, readBody } from './responses.js';
import { guardAction, parseWindow } from './routes.js';
import type { ActionTarget } from './source.js';

/** A JSON filter uses the query parameters' names; values are strings or lists of strings. */
function filterFromJson(value: unknown): URLSearchParams {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ValidationError('filter must be an object of query parameters, e.g. {"status": "failed", "name": "sendEmail"}');
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (typeof item !== 'string' && typeof item !== 'number') throw new ValidationError(`filter.${k} must be a string or a list of strings`);
      p.append(k, String(item));
    }
  }
  return p;
}

async function postAction(ctx: Ctx, name: string): Promise<Response> {
  if (ctx.app.readOnly) throw new HttpError(403, 'This dashboard is read-only: actions are turned off.', 'read_only');
  guardAction(ctx, ctx.request.headers.get('x-csrf-token'));
  const action = parseAction(name);
  // JSON only: a cross-site HTML form cannot send it, which backs up the token.
  if (!(ctx.request.headers.get('content-type') ?? '').startsWith('application/json')) {
    throw new HttpError(415, 'send the action as JSON (Content-Type: application/json)', 'unsupported_media_type');
  }
  let body: unknown;
  try {
    body = JSON.parse(await readBody(ctx.request));
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new ValidationError('the body is not valid JSON');
  }
  const b = (typeof body === 'object' && body !== null ? body : {}) as { ids?: unknown; filter?: unknown };
  let target: ActionTarget;
  if (b.ids !== undefined && b.filter !== undefined) throw new ValidationError('give either ids or filter, not both');
  if (Array.isArray(b.ids)) {
    const ids = parseIds(b.ids);
    if (!ids.length) throw new ValidationError('ids is empty');
    target = { ids };
  } else if (b.filter !== undefined) {
    const narrowed = narrowForAction(action, parseFilter(filterFromJson(b.filter)));
    if (!narrowed) return jsonResponse(200, { action, changed: 0, unchanged: 0, refused: 0, items: [], itemsOmitted: 0 });
    target = { filter: narrowed };
  } else {
    throw new ValidationError('give ids (a list of task ids) or filter (an object of query parameters)');
  }
  return jsonResponse(200, await runAction(ctx.app.source, action, target));
}

export async function routeApi(ctx: Ctx): Promise<Response> {
  const rel = ctx.rel.slice('/api'.length) || '/';
  const source = ctx.app.source;
  const params = ctx.url.searchParams;
  if (ctx.request.method === 'POST') {
    const m = /^\/actions\/([A-Za-z]+)$/.exec(rel);
    if (m) return postAction(ctx, m[1]);
    throw new HttpError(404, `no API action at ${ctx.url.pathname}`, 'not_found');
  }
  switch (rel) {
    case '/overview':
      return jsonResponse(200, await source.overview());
    case '/tasks':
      return jsonResponse(200, await source.listTasks(parseTaskQuery(params)));
    case '/count':
      return jsonResponse(200, { count: await source.countTasks(parseFilter(params)) });
    case '/failed': {
      const windowSeconds = parseWindow(params.get('since'));
      const since = windowSeconds ? new Date(ctx.view.nowMs - windowSeconds * 1000) : null;
      return jsonResponse(200, { since, groups: await source.failureGroups({ since, limit: 200 }) });
    }
    case '/schedules':
      return jsonResponse(200, await source.schedules());
    case '/workers':
      return jsonResponse(200, await source.workers());
    case '/csrf':
      // dispatch() already queued the CSRF cookie if this client had none.
      return jsonResponse(200, { token: ctx.view.csrfToken, readOnly: ctx.app.readOnly });
  }
  const m = /^\/tasks\/([^/]+)$/.exec(rel);
  if (m) {
    let id: string;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      throw new ValidationError('malformed task id in the URL');
    }
    const detail = await source.getTask(id);
    return detail ? jsonResponse(200, detail) : jsonError(404, 'not_found', `no task has id ${id}`);
  }
  throw new HttpError(404, `no API endpoint at ${ctx.url.pathname}`, 'not_found');
}

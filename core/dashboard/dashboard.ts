/**
 * `createDashboard(options)`: the dashboard as a fetch-style handler (`fetch(Request)`) and as a
 * Node request handler (`handle(req, res, next?)`) for node:http, Express, Fastify and Koa. This
 * file states and checks the options; dispatch.ts runs each request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../errors.js';
import type { App, DashboardLogger } from './context.js';
import { jsonError } from './responses.js';
import { digestOf, Signer } from './security.js';
import type { DashboardSource } from './source.js';

export type { DashboardLogger } from './context.js';

export interface DashboardOptions {
  /** Reads and actions. */
  source: DashboardSource;
  /**
   * The path the dashboard is served under, as the browser sees it (default '/'). Under an
   * Express `app.use(path, dashboard.handle)` mount it may be left out: the mount path is used.
   */
  basePath?: string;
  /** Show no action and refuse every action request with 403. Default false. */
  readOnly?: boolean;
  /** A password or token. Browsers sign in with HTTP Basic (any user name); scripts may send `Authorization: Bearer <token>`. Default: none. */
  auth?: string | null;
  /** The page title. Default 'bgtasks'. */
  title?: string;
  /** Key material for CSRF tokens and flash messages; set the same value on every process that serves one dashboard. Default: from `auth`, else random per process. */
  secret?: string | null;
  /** Seconds between live refreshes of a page. Default 2. */
  refreshSeconds?: number;
  /** Default: one line on standard error. */
  logger?: DashboardLogger;
  /** The clock for "3 min ago" and time windows, in epoch ms. Default Date.now. */
  now?: () => number;
}

export interface Dashboard {
  /** The base path in use ('' for the root). */
  readonly basePath: string;
  /** Answers a request whose URL path includes the base path; 404 for paths outside it. */
  fetch(request: Request): Promise<Response>;
  /**
   * Answers a Node request. Paths outside the base path go to `next()` when given (404 when
   * not). Resolves when the response is written; never rejects.
   */
  handle(req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): Promise<void>;
}

/** '/admin/queue/' → '/admin/queue'; '/' → ''. */
export function normalizeBasePath(value: string | undefined): string {
  const v = value ?? '/';
  if (typeof v !== 'string' || !v.startsWith('/') || /[?#\\\s]|\/\/|(^|\/)\.\.?(\/|$)/.test(v) || v.length > 200) {
    throw new ConfigError(`dashboard basePath must be an absolute URL path such as '/' or '/admin/queue', not ${JSON.stringify(value)}`);
  }
  return v.replace(/\/+$/, '');
}

const defaultLogger: DashboardLogger = {
  error: (msg, fields) => process.stderr.write(`bgtasks dashboard: ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
};

export function resolveOptions(o: DashboardOptions): App {
  if (!o || typeof o.source !== 'object' || o.source === null || typeof o.source.overview !== 'function') {
    throw new ConfigError('createDashboard needs a `source` (a DashboardSource)');
  }
  if (o.auth !== undefined && o.auth !== null && (typeof o.auth !== 'string' || o.auth.length === 0)) {
    throw new ConfigError('dashboard auth must be a non-empty string (a password or token), or left out');
  }
  const refresh = o.refreshSeconds ?? 2;
  if (typeof refresh !== 'number' || !Number.isFinite(refresh) || refresh < 0.5 || refresh > 3600) {
    throw new ConfigError(`dashboard refreshSeconds must be a number from 0.5 to 3600, not ${JSON.stringify(o.refreshSeconds)}`);
  }
  const auth = o.auth ?? null;
  return {
    source: o.source,
    base: normalizeBasePath(o.basePath),
    readOnly: o.readOnly === true,
    title: o.title ?? 'bgtasks',
    authDigest: auth === null ? null : digestOf(auth),
    signer: new Signer(o.secret ?? auth),
    refreshMs: Math.round(refresh * 1000),
    logger: o.logger ?? defaultLogger,
    now: o.now ?? Date.now,
  };
}

/**
 * The pages, routes and assets, loaded by the first request: every importer of bgtasks (a worker's
 * task files among them) loads this file, and loading them was ~25 ms of each cold start.
 */
const dispatcher = () => import('./dispatch.js');
const nodeHandler = () => import('./node.js');

export function createDashboard(options: DashboardOptions): Dashboard {
  const app = resolveOptions(options);
  const fetchHandler = async (request: Request): Promise<Response> => {
    const { dispatch } = await dispatcher();
    const res = await dispatch(app, request, app.base);
    return res ?? jsonError(404, 'not_found', `not a dashboard path: the dashboard is served under '${app.base || '/'}'`);
  };
  return {
    basePath: app.base,
    fetch: fetchHandler,
    handle: async (req, res, next) => (await nodeHandler()).handleNode(app, req, res, next),
  };
}

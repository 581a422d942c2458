/**
 * What every route of the dashboard sees: the resolved options (`App`) and one request (`Ctx`),
 * with the cookie names and the small request-level helpers that several routes share.
 */
import type { FlashMessage, View } from './layout.js';
import { decodeFlash } from './actions.js';
import { serializeCookie, type AuthScheme, type Signer } from './security.js';
import type { DashboardSource } from './source.js';

/** Where the dashboard reports failures it hides from the page (the shape of bgtasks' Logger). */
export interface DashboardLogger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn?(msg: string, fields?: Record<string, unknown>): void;
}

/** Resolved options, shared by every request. */
export interface App {
  source: DashboardSource;
  base: string;
  readOnly: boolean;
  title: string;
  authDigest: Buffer | null;
  signer: Signer;
  refreshMs: number;
  logger: DashboardLogger;
  now: () => number;
}

/** One request, as the routes see it. */
export interface Ctx {
  app: App;
  request: Request;
  url: URL;
  /** The path under the base, starting with '/'. */
  rel: string;
  cookies: Map<string, string>;
  /** The CSRF nonce (from the cookie, or new with a Set-Cookie queued). */
  nonce: string;
  setCookies: string[];
  secure: boolean;
  view: View;
  /** `?fragment=1`: only the live region (HTML), errors as JSON. */
  fragment: boolean;
  authScheme: AuthScheme | null;
}

export const CSRF_COOKIE = 'bgtasks_csrf';
export const FLASH_COOKIE = 'bgtasks_flash';

/** The flash message left by the last action, if it is genuine; consumed by a full page view. */
export function takeFlash(ctx: Ctx): FlashMessage | null {
  const sealed = ctx.cookies.get(FLASH_COOKIE);
  if (!sealed || ctx.fragment) return null;
  ctx.setCookies.push(serializeCookie(FLASH_COOKIE, '', { path: ctx.view.base || '/', secure: ctx.secure, maxAgeSeconds: 0 }));
  const text = ctx.app.signer.unseal('flash', sealed);
  return text === null ? null : decodeFlash(text);
}


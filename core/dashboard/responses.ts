/**
 * Building responses: every one carries the security headers, pages and API answers are never
 * cached (they hold task data), and request bodies are read with a size limit.
 */
import { SECURITY_HEADERS } from './security.js';

/** Action forms and API calls are small; anything larger is refused before it is parsed. */
export const MAX_BODY_BYTES = 1024 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

function headers(contentType: string | null, extra: Record<string, string> = {}): Headers {
  const h = new Headers(SECURITY_HEADERS);
  if (contentType) h.set('content-type', contentType);
  if (!('cache-control' in extra)) h.set('cache-control', 'no-store');
  for (const [k, v] of Object.entries(extra)) h.set(k, v);
  return h;
}

export function htmlResponse(status: number, body: string, extra?: Record<string, string>): Response {
  return new Response(body, { status, headers: headers('text/html; charset=utf-8', extra) });
}

export function jsonResponse(status: number, value: unknown, extra?: Record<string, string>): Response {
  // Dates become ISO strings through Date#toJSON.
  return new Response(JSON.stringify(value), { status, headers: headers('application/json; charset=utf-8', extra) });
}

export function jsonError(status: number, code: string, message: string, extra?: Record<string, string>): Response {
  return jsonResponse(status, { error: { code, message } }, extra);
}

export function textResponse(status: number, body: string, extra?: Record<string, string>): Response {
  return new Response(body, { status, headers: headers('text/plain; charset=utf-8', extra) });
}

export function redirect(location: string): Response {
  return new Response(null, { status: 303, headers: headers(null, { location }) });
}

export function assetResponse(body: string, contentType: string, etag: string, ifNoneMatch: string | null): Response {
  // Versioned URLs (?v=hash): safe to keep for a day; `private` because the dashboard may sit behind auth.
  const extra = { etag: `"${etag}"`, 'cache-control': 'private, max-age=86400' };
  if (ifNoneMatch === `"${etag}"`) return new Response(null, { status: 304, headers: headers(null, extra) });
  return new Response(body, { status: 200, headers: headers(contentType, extra) });
}

/** The body as text, refusing (413) more than MAX_BODY_BYTES whatever Content-Length claims. */
export async function readBody(request: Request): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, `request body too large (at most ${MAX_BODY_BYTES} bytes)`, 'too_large');
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new HttpError(413, `request body too large (at most ${MAX_BODY_BYTES} bytes)`, 'too_large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The dashboard's defences: the response headers every answer carries, the password check
 * (HTTP Basic, or a Bearer token for scripts), the CSRF token of action forms, cookies, and the
 * signing of the flash message that reports an action's result after its redirect.
 *
 * CSRF: a signed double-submit token. A random nonce lives in an HttpOnly SameSite=Strict cookie;
 * forms carry HMAC(key, nonce). A forged cross-site POST has neither the cookie (SameSite) nor a
 * way to compute the HMAC, and unlike a plain double-submit cookie, a cookie planted from a
 * sibling subdomain does not help without the key. The key is derived from the `secret` option,
 * else from the password, else made at random when the process starts: several processes that
 * serve one dashboard behind a load balancer need a shared `secret` or `auth`.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** No inline script or style anywhere: the pages load one script and one stylesheet from `self`. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const sha256 = (text: string | Buffer): Buffer => createHash('sha256').update(text).digest();

/**
 * Compares a presented secret with the configured one in constant time: both are hashed first,
 * so the compared buffers have equal length whatever was sent and the length of the password
 * does not leak either.
 */
export function secretMatches(presented: string, expectedDigest: Buffer): boolean {
  return timingSafeEqual(sha256(presented), expectedDigest);
}

export const digestOf = (secret: string): Buffer => sha256(secret);

export type AuthResult = 'ok' | 'missing' | 'bad';
export type AuthScheme = 'basic' | 'bearer';

/**
 * Checks the Authorization header. Basic: any user name, the password is the secret (browsers ask
 * for both). Bearer: the secret itself, for scripts and curl.
 */
export function checkAuthorization(header: string | null, expectedDigest: Buffer): { result: AuthResult; scheme: AuthScheme | null } {
  if (!header) return { result: 'missing', scheme: null };
  const m = /^(Basic|Bearer)\s+(\S+)\s*$/i.exec(header);
  if (!m) return { result: 'bad', scheme: null };
  const scheme = m[1].toLowerCase() as AuthScheme;
  let secret = m[2];
  if (scheme === 'basic') {
    const decoded = Buffer.from(m[2], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { result: 'bad', scheme };
    secret = decoded.slice(colon + 1);
  }
  return { result: secretMatches(secret, expectedDigest) ? 'ok' : 'bad', scheme };
}

/** Signs and checks small values with one key (CSRF tokens, flash messages). */
export class Signer {
  private readonly key: Buffer;

  constructor(material: string | null) {
    // A fixed label keeps this key distinct from any other use of the same password.
    this.key = material === null ? randomBytes(32) : createHmac('sha256', 'bgtasks-dashboard-v1').update(material).digest();
  }

  mac(purpose: string, value: string): string {
    return createHmac('sha256', this.key).update(`${purpose}\n${value}`).digest('base64url');
  }

  verify(purpose: string, value: string, mac: string): boolean {
    const expected = Buffer.from(this.mac(purpose, value));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** `value.mac`, for a cookie that must come back unaltered. */
  seal(purpose: string, value: string): string {
    return `${value}.${this.mac(purpose, value)}`;
  }

  unseal(purpose: string, sealed: string): string | null {
    const dot = sealed.lastIndexOf('.');
    if (dot <= 0) return null;
    const value = sealed.slice(0, dot);
    return this.verify(purpose, value, sealed.slice(dot + 1)) ? value : null;
  }
}

export const newNonce = (): string => randomBytes(18).toString('base64url');

const NONCE_RE = /^[A-Za-z0-9_-]{24}$/;
export const isNonce = (v: string | undefined): v is string => v !== undefined && NONCE_RE.test(v);

export function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    // The first cookie of a name wins: browsers send the most specific path first.
    if (name && !out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

export interface CookieOptions {
  path: string;
  secure: boolean;
  maxAgeSeconds?: number;
}

/** HttpOnly and SameSite=Strict always: no script reads these, and no other site sends them. */
export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  let c = `${name}=${value}; Path=${o.path}; HttpOnly; SameSite=Strict`;
  if (o.maxAgeSeconds !== undefined) c += `; Max-Age=${o.maxAgeSeconds}`;
  if (o.secure) c += '; Secure';
  return c;
}

/**
 * Masking secrets in what may be printed: a database URL's password and secret query parameters.
 * Every message, log line and page that could quote a URL passes through here.
 */

const SECRET_PARAMS = /^(password|pass|pwd|passwd|sslpassword|secret|token)$/i;

/**
 * Replaces the password of a URL (and secret query parameters such as `?password=`) with `***`.
 * The password ends at the last "@" of the authority, since a password may itself contain "@".
 * Text that is not a URL is returned unchanged.
 */
export function maskUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  let auth = authority;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) auth = `${userinfo.slice(0, colon)}:***${authority.slice(at)}`;
  }
  const maskedRest = rest.replace(/([?&])([^=&#]+)=([^&#]*)/g, (all, sep: string, key: string) =>
    SECRET_PARAMS.test(decodeURIComponent(key)) ? `${sep}${key}=***` : all,
  );
  return `${scheme}${auth}${maskedRest}`;
}

/** Masks the password of every URL inside a text (driver error messages may quote one). */
export function maskUrlsIn(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+/gi, (url) => maskUrl(url));
}

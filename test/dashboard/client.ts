/**
 * A small browser stand-in for HTTP tests of the dashboard: it keeps cookies like a browser
 * (name=value, dropped by Max-Age=0), sends requests to a fetch handler, and reads the CSRF token
 * out of a page.
 */
export type Fetcher = (request: Request) => Promise<Response>;

export class Client {
  readonly cookies = new Map<string, string>();

  constructor(
    private readonly fetcher: Fetcher,
    private readonly origin = 'http://localhost',
    private readonly defaultHeaders: Record<string, string> = {},
  ) {}

  private headers(extra: Record<string, string> = {}): Headers {
    const h = new Headers({ ...this.defaultHeaders, ...extra });
    if (this.cookies.size && !h.has('cookie')) h.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    return h;
  }

  private keep(res: Response): Response {
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1).trim());
    }
    return res;
  }

  async get(path: string, headers?: Record<string, string>): Promise<Response> {
    return this.keep(await this.fetcher(new Request(this.origin + path, { headers: this.headers(headers) })));
  }

  async send(method: string, path: string, headers?: Record<string, string>): Promise<Response> {
    return this.keep(await this.fetcher(new Request(this.origin + path, { method, headers: this.headers(headers) })));
  }

  async postForm(path: string, fields: Array<[string, string]>, headers?: Record<string, string>): Promise<Response> {
    const body = new URLSearchParams(fields).toString();
    const h = this.headers({ 'content-type': 'application/x-www-form-urlencoded', ...headers });
    return this.keep(await this.fetcher(new Request(this.origin + path, { method: 'POST', headers: h, body })));
  }

  async postJson(path: string, value: unknown, headers?: Record<string, string>): Promise<Response> {
    const h = this.headers({ 'content-type': 'application/json', ...headers });
    return this.keep(await this.fetcher(new Request(this.origin + path, { method: 'POST', headers: h, body: JSON.stringify(value) })));
  }

  /** GETs a page and returns its CSRF token (the hidden `csrf` field). */
  async csrf(path = '/tasks'): Promise<string> {
    const text = await (await this.get(path)).text();
    const m = /name="csrf" value="([^"]+)"/.exec(text);
    if (!m) throw new Error(`no CSRF field on ${path}`);
    return m[1];
  }
}

/** A response's JSON body, untyped (tests look into it field by field). */
export async function json(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}

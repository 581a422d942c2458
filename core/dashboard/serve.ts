/**
 * `serveDashboard({ host, port, ... })`: the dashboard on its own HTTP server, for the
 * `bgtasks dashboard` command. It refuses to listen beyond loopback without a password, and
 * while it runs without one it answers only to loopback host names, so a web page cannot reach
 * it through DNS rebinding (a hostile name that resolves to 127.0.0.1).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { BgtasksError, ConfigError } from '../errors.js';
import { createDashboard, type Dashboard, type DashboardOptions } from './dashboard.js';
import { SECURITY_HEADERS } from './security.js';

export interface ServeOptions extends DashboardOptions {
  /** Default '127.0.0.1'. Any other address than loopback needs `auth`. */
  host?: string;
  /** Default 7878; 0 picks a free port. */
  port?: number;
}

export interface DashboardServer {
  /** Where to open it, e.g. http://127.0.0.1:7878/ (the real port when 0 was asked). */
  url: string;
  server: Server;
  dashboard: Dashboard;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7878;

/** localhost, 127.0.0.0/8 and ::1 (also as an IPv4-mapped address). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** The host name of a Host header, without its port. */
function hostName(header: string | undefined): string {
  if (!header) return '';
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(header.trim());
  return m ? m[1] : '';
}

export function checkServeOptions(host: string, port: number, auth: string | null | undefined): void {
  if (typeof host !== 'string' || host.trim() === '' || /[\s/]/.test(host)) {
    throw new ConfigError(`dashboard host must be a host name or IP address, not ${JSON.stringify(host)}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`dashboard port must be a whole number from 0 to 65535, not ${JSON.stringify(port)}`);
  }
  if (!auth && !isLoopback(host)) {
    throw new ConfigError(
      `refusing to serve the dashboard on ${host} without a password: anyone who can reach this address could read task arguments ` +
        'and retry, cancel or delete tasks. Set one (the `auth` option; for `bgtasks dashboard`, the BGTASKS_DASHBOARD_AUTH environment ' +
        'variable), or listen on 127.0.0.1 and reach it through an SSH tunnel.',
    );
  }
}

export async function serveDashboard(options: ServeOptions): Promise<DashboardServer> {
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  checkServeOptions(host, port, options.auth);
  const dashboard = createDashboard(options);
  const base = dashboard.basePath;
  const guardHosts = !options.auth;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (guardHosts) {
      const name = hostName(req.headers.host);
      if (!isLoopback(name) && name.toLowerCase() !== host.toLowerCase()) {
        res.writeHead(421, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
        res.end('This dashboard has no password, so it answers only to localhost addresses. Open it as http://127.0.0.1:<port>/.\n');
        return;
      }
    }
    if (base !== '' && (req.url === '/' || req.url === '')) {
      res.writeHead(302, { ...SECURITY_HEADERS, location: `${base}/` });
      res.end();
      return;
    }
    void dashboard.handle(req, res);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is in use (choose another port)' : err.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : err.message;
      reject(new BgtasksError(`cannot serve the dashboard on ${host}:${port}: ${why}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = isIP(host) === 6 ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${actualPort}${base}/`,
    server,
    dashboard,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

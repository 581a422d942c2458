/**
 * `process-tasks --metrics-port`: a small node:http server in the worker's process that answers
 * `GET /metrics` with the worker's metrics in the Prometheus text format (and `/` with a pointer
 * to it). It serves nothing else; it listens on loopback unless `--metrics-host` says otherwise.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decimal } from '../core/config/settings-spec.js';
import { UsageError } from './flags.js';

export interface MetricsServer {
  /** The port it listens on (the one asked for, or the one the system chose for 0). */
  port: number;
  close(): Promise<void>;
}

/** `--metrics-port`: an integer from 0 (any free port, logged) to 65535. */
export function metricsPortFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new UsageError(`Invalid --metrics-port: ${JSON.stringify(value)} — expected a port number from 0 to 65535 (0: any free port)`);
  }
  return n;
}

/** `--metrics-host`: a host name or address to listen on; only with --metrics-port. */
export function metricsHostFlag(value: string | undefined, port: number | undefined): string {
  if (value !== undefined && port === undefined) throw new UsageError('Invalid --metrics-host: it needs --metrics-port (the host to serve /metrics on)');
  if (value !== undefined && value.trim() === '') throw new UsageError('Invalid --metrics-host: "" — expected a host name or IP address, e.g. 127.0.0.1 or 0.0.0.0');
  return value ?? '127.0.0.1';
}

export async function serveMetrics(o: { host: string; port: number; collect: () => Promise<string>; contentType: string }): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('bgtasks worker: metrics are at /metrics\n');
      return;
    }
    o.collect().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': o.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`could not collect metrics: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' ? 'no such address on this machine' : err.message;
      reject(new UsageError(`Invalid --metrics-port/--metrics-host: cannot listen on ${o.host}:${o.port} — ${why}`));
    };
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Scrapers keep connections open; they must not hold the worker's exit.
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A small TCP proxy on 127.0.0.1 for outage tests: it forwards to a database server, and `cut()`
 * drops every open connection and refuses new ones until `restore()`. `dropRequestsOver(n)` drops
 * a connection whose client sends more than n bytes before the server answers, as MySQL/MariaDB
 * do with a statement over max_allowed_packet (on any database). `blackHole()` drops every byte
 * in both directions but keeps the connections open (no reset, no close), as a network that
 * drops packets does; `blackHoleAfter(re)` starts it just after a client request matching `re`
 * has gone through (say a COMMIT: the server commits, the client never hears of it), and
 * `blackHoleAfter(a, b)` after one connection sent a request matching `a`, then one matching `b`
 * (the COMMIT of one transaction, not another connection's).
 */
import net from 'node:net';
import { Transform } from 'node:stream';

export class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private cutOff = false;
  private maxRequestBytes = Infinity;
  private dropping = false;
  private dropAfter: RegExp[] | null = null;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<number> {
    this.server = net.createServer((client) => {
      if (this.cutOff) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      // Bytes the client sent since the server last answered: one request, roughly.
      let request = 0;
      client.on('data', (chunk: Buffer) => {
        request += chunk.length;
        if (request > this.maxRequestBytes) {
          client.destroy();
          upstream.destroy();
        }
      });
      upstream.on('data', () => (request = 0));
      client.pipe(this.gate(true)).pipe(upstream);
      upstream.pipe(this.gate(false)).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Drops every connection and refuses new ones (a network partition). */
  cut(): void {
    this.cutOff = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Ends a cut and a black hole: new connections work again (old ones may be out of step). */
  restore(): void {
    this.cutOff = false;
    this.dropping = false;
    this.dropAfter = null;
  }

  /** True while the black hole is on (after `blackHole()`, or once `blackHoleAfter` matched). */
  get blackHoling(): boolean {
    return this.dropping;
  }

  /** From now on, drops every byte both ways, on open and new connections, which stay open. */
  blackHole(): void {
    this.dropping = true;
  }

  /**
   * Black-holes everything just after one connection's client sent requests matching each of
   * `requests` (latin1 text) in order, one request each; the last one goes through.
   */
  blackHoleAfter(...requests: RegExp[]): void {
    this.dropAfter = requests;
  }

  /**
   * Forwards chunks unless the black hole is on; `fromClient` chunks may switch it on. Each
   * connection counts the armed requests it has sent (from the arming on).
   */
  private gate(fromClient: boolean): Transform {
    let armed: RegExp[] | null = null;
    let matched = 0;
    return new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        if (this.dropping) return done();
        if (fromClient && this.dropAfter) {
          if (armed !== this.dropAfter) [armed, matched] = [this.dropAfter, 0];
          if (armed[matched]!.test(chunk.toString('latin1')) && ++matched === armed.length) {
            this.dropAfter = null;
            this.dropping = true;
          }
        }
        done(null, chunk);
      },
    });
  }

  /** From now on, drops each connection whose client sends more than `bytes` before a reply. */
  dropRequestsOver(bytes: number): void {
    this.maxRequestBytes = bytes;
  }

  async stop(): Promise<void> {
    this.cut();
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }
}

/** The URL with its host and port replaced by the proxy's. */
export function throughProxy(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

import { createServer, connect, type Server, type Socket } from 'node:net';

/** What the proxy does with traffic: forward it, drop connections at once, or swallow it silently. */
export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

/**
 * A TCP proxy of the test's own between the app and MariaDB, to cut the database off mid-load
 * or make it accept connections and never answer, then bring it back (R18).
 */
export class TcpProxy {
  private server?: Server;
  private mode: ProxyMode = 'forward';
  private readonly pairs = new Set<[Socket, Socket | undefined]>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  /** Drops every open connection and every new one at once: the database is gone. */
  refuse(): void {
    this.mode = 'refuse';
    this.destroyAll();
  }

  /** Accepts connections and swallows all traffic without answering: the database hangs. */
  blackhole(): void {
    this.mode = 'blackhole';
    for (const [client, upstream] of this.pairs) {
      client.unpipe();
      upstream?.unpipe();
      client.on('data', () => undefined);
      upstream?.on('data', () => undefined);
    }
  }

  /**
   * Forwards new connections while those caught by `blackhole()` stay open and silent, as after a
   * network fault that dropped them without a reset: only the client can give them up.
   */
  forwardNewConnections(): void {
    this.mode = 'forward';
  }

  /** Forwards again; connections left from the outage are closed, as a restarted network would. */
  restore(): void {
    this.mode = 'forward';
    this.destroyAll();
  }

  async stop(): Promise<void> {
    this.destroyAll();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'refuse') {
      client.destroy();
      return;
    }
    if (this.mode === 'blackhole') {
      const pair: [Socket, Socket | undefined] = [client, undefined];
      this.pairs.add(pair);
      client.on('data', () => undefined);
      client.once('close', () => this.pairs.delete(pair));
      return;
    }
    const upstream = connect(this.targetPort, this.targetHost);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const pair: [Socket, Socket | undefined] = [client, upstream];
    this.pairs.add(pair);
    client.once('close', () => {
      upstream.destroy();
      this.pairs.delete(pair);
    });
    upstream.once('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private destroyAll(): void {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
    this.pairs.clear();
  }
}

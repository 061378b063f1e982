import { createServer, request as forward, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the proxy received it from the client, and what the proxy did with the answer. */
export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The status the server answered with; undefined if the server never answered. */
  status?: number;
  fate?: 'delivered' | 'dropped' | 'delayed';
}

interface Misbehaviour {
  remaining: number;
  readonly delayMs: number | undefined;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']);

/**
 * An HTTP proxy of the test's own, on loopback, in front of the API: it forwards every request,
 * and for the next N requests on a path lets the server process the request fully, then destroys
 * the client's socket instead of answering (the answer is lost on the way back), or holds the answer
 * back for a while (the client times out first). That is the failure an idempotency key exists for
 * (R28): the client cannot tell "never arrived" from "done, answer lost".
 */
export class ResponseDroppingProxy {
  /** Every request received, in order. */
  readonly requests: ProxiedRequest[] = [];
  private readonly misbehaviours = new Map<string, Misbehaviour>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private server?: Server;

  private constructor(private readonly targetPort: number) {}

  static async start(targetPort: number): Promise<ResponseDroppingProxy> {
    const proxy = new ResponseDroppingProxy(targetPort);
    proxy.server = createServer((req, res) => proxy.handle(req, res));
    await new Promise<void>((resolve) => proxy.server!.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The proxy's base URL, `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  /** The next `count` requests on `path` reach the server, which answers; the client's socket is then destroyed. */
  dropResponses(path: string, count: number): void {
    this.misbehaviours.set(path, { remaining: count, delayMs: undefined });
  }

  /** The next `count` requests on `path` get their answer only `delayMs` after the server sent it. */
  delayResponses(path: string, count: number, delayMs: number): void {
    this.misbehaviours.set(path, { remaining: count, delayMs });
  }

  /** Forwards every request on every path again. */
  behave(): void {
    this.misbehaviours.clear();
  }

  /** The requests received on `path` that carried `Idempotency-Key: key`. */
  requestsWithKey(key: string, path?: string): ProxiedRequest[] {
    return this.requests.filter((r) => r.headers['idempotency-key'] === key && (path === undefined || r.path === path));
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      const recorded: ProxiedRequest = { method: req.method ?? 'GET', path, headers: req.headers, body: Buffer.concat(chunks) };
      this.requests.push(recorded);
      const misbehaviour = this.misbehaviours.get(path);
      const rule = misbehaviour && misbehaviour.remaining > 0 ? misbehaviour : undefined;
      if (rule) rule.remaining--;
      this.forward(req, recorded, res, rule);
    });
  }

  private forward(req: IncomingMessage, recorded: ProxiedRequest, res: ServerResponse, rule: Misbehaviour | undefined): void {
    const upstream = forward(
      {
        host: '127.0.0.1',
        port: this.targetPort,
        method: recorded.method,
        path: req.url,
        headers: { ...withoutHopByHop(req.headers), 'content-length': String(recorded.body.length), connection: 'close' },
        // A connection of its own per request: dropping a client never cuts a request the server is still processing.
        agent: false,
      },
      (answer) => {
        const body: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => body.push(chunk));
        answer.on('end', () => {
          recorded.status = answer.statusCode;
          // The server has sent its whole answer: whatever happens next happens to the client only.
          const deliver = () => {
            if (res.destroyed) return;
            const bytes = Buffer.concat(body);
            res.writeHead(answer.statusCode ?? 502, { ...withoutHopByHop(answer.headers), 'content-length': String(bytes.length) });
            res.end(bytes);
          };
          if (!rule) {
            recorded.fate = 'delivered';
            deliver();
          } else if (rule.delayMs === undefined) {
            recorded.fate = 'dropped';
            res.socket?.destroy();
          } else {
            recorded.fate = 'delayed';
            const timer = setTimeout(() => {
              this.timers.delete(timer);
              deliver();
            }, rule.delayMs);
            this.timers.add(timer);
          }
        });
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    upstream.end(recorded.body);
  }
}

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase())));
}

import type { ServerResponse } from 'node:http';
import type { PlatformReply, PlatformSend } from './platform-reply.js';

type ExpressResponse = ServerResponse & { send: PlatformSend };

/**
 * Express: middleware that transforms a body (`compression`) wraps `res.write`/`res.end` before the
 * handler runs, so the bytes the library sees at `end` are already the representation.
 */
export class ExpressReply implements PlatformReply {
  constructor(private readonly response: ExpressResponse) {}

  replaceNextSend(sendInstead: (send: PlatformSend) => unknown): void {
    const response = this.response;
    // An own property over Express's prototype method; `res.json` calls `this.send` too.
    response.send = function () {
      delete (response as Partial<ExpressResponse>).send;
      return sendInstead((payload) => response.send(payload));
    };
  }

  recordRepresentation(): () => Buffer | undefined {
    return () => undefined;
  }

  setStatus(status: number): void {
    this.response.statusCode = status;
  }

  setHeader(name: string, value: string | readonly string[]): void {
    // Node's own setter: Express's `res.set` would rewrite a stored Content-Type (it adds a charset).
    this.response.setHeader(name, value);
  }

  removeHeader(name: string): void {
    this.response.removeHeader(name);
  }

  headerNames(): string[] {
    return this.response.getHeaderNames();
  }
}

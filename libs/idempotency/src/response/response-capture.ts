import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { chunkToBuffer, headersOfWriteHead } from './outgoing-headers.js';

/** A response exactly as the platform was about to send it. */
export interface CapturedResponse {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
}

/** Why a response cannot be stored for replay (R16b). */
export type UnreplayableReason = 'streamed' | 'written by the handler';

export interface CaptureHooks {
  /** Whether Nest has the handler's outcome; a write before that comes from the handler itself. */
  handlerSettled(): boolean;
  /** Runs before the response leaves: the store write happens while the bytes wait. */
  beforeSend(response: CapturedResponse): Promise<void>;
  /** The response goes out untouched and is not stored. */
  unreplayable(reason: UnreplayableReason): void;
}

type Method = (...args: unknown[]) => unknown;

/**
 * Intercepts the Node response under Express or Fastify to see the bytes that are really sent:
 * after serializers, interceptors and exception filters (R9, R16). The final `end()` is held until
 * `beforeSend` has stored the response, so a client that has its answer can retry and find it.
 * A response written in pieces (a stream) or by the handler itself passes through untouched.
 */
export function captureResponse(response: ServerResponse, hooks: CaptureHooks): void {
  const target = response as unknown as Record<'writeHead' | 'write' | 'end', Method>;
  const original = { writeHead: target.writeHead, write: target.write, end: target.end };
  const writeHeadHeaders: OutgoingHttpHeaders = {};
  const restore = (): void => {
    target.writeHead = original.writeHead;
    target.write = original.write;
    target.end = original.end;
  };

  target.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    Object.assign(writeHeadHeaders, headersOfWriteHead(args.slice(1)));
    return original.writeHead.apply(this, args);
  };

  target.write = function (this: ServerResponse, ...args: unknown[]) {
    restore();
    hooks.unreplayable(hooks.handlerSettled() ? 'streamed' : 'written by the handler');
    return original.write.apply(this, args);
  };

  target.end = function (this: ServerResponse, ...args: unknown[]) {
    restore();
    if (!hooks.handlerSettled()) {
      hooks.unreplayable('written by the handler');
      return original.end.apply(this, args);
    }
    const captured: CapturedResponse = {
      status: response.statusCode,
      headers: { ...lowerCased(response.getHeaders()), ...writeHeadHeaders },
      body: chunkToBuffer(args[0], args[1]),
    };
    void hooks.beforeSend(captured).finally(() => original.end.apply(response, args));
    return response;
  };
}

function lowerCased(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const result: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) result[name.toLowerCase()] = value;
  return result;
}

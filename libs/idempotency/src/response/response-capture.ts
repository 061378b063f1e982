import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { chunkToBuffer, headersOfWriteHead } from './outgoing-headers.js';

/** A response exactly as the platform was about to send it. */
export interface CapturedResponse {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
}

/** What to send instead of the captured response, when storing it showed the work did not happen. */
export interface ReplacementResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Why a response cannot be stored for replay (R16b). */
export type UnreplayableReason = 'streamed' | 'written by the handler';

export interface CaptureHooks {
  /** Whether Nest has the handler's outcome; a write before that comes from the handler itself. */
  handlerSettled(): boolean;
  /**
   * Runs before the response leaves: the store write happens while the bytes wait. It may answer
   * with a replacement (atomic mode, when the commit failed and the handler's writes are gone).
   */
  beforeSend(response: CapturedResponse): Promise<ReplacementResponse | void>;
  /** The response goes out untouched and is not stored. */
  unreplayable(reason: UnreplayableReason): void;
}

type Method = (...args: unknown[]) => unknown;

/**
 * Intercepts the Node response under Express or Fastify to see the bytes that are really sent:
 * after serializers, interceptors and exception filters (R9, R16). The status line, headers and
 * body are held until `beforeSend` has stored the response, so a client that has its answer can
 * retry and find it. A response written in pieces (a stream) or by the handler itself passes
 * through untouched.
 */
export function captureResponse(response: ServerResponse, hooks: CaptureHooks): void {
  const target = response as unknown as Record<'writeHead' | 'write' | 'end', Method>;
  const original = { writeHead: target.writeHead, write: target.write, end: target.end };
  let heldHead: unknown[] | undefined;
  const restore = (): void => {
    target.writeHead = original.writeHead;
    target.write = original.write;
    target.end = original.end;
  };
  const sendHeldHead = (): void => {
    if (heldHead) original.writeHead.apply(response, heldHead);
    heldHead = undefined;
  };

  // Fastify writes its status and headers here, just before end(); holding them keeps both open
  // until the outcome is stored.
  target.writeHead = function (...args: unknown[]) {
    heldHead = args;
    if (typeof args[0] === 'number') response.statusCode = args[0];
    return response;
  };

  target.write = function (...args: unknown[]) {
    restore();
    sendHeldHead();
    hooks.unreplayable(hooks.handlerSettled() ? 'streamed' : 'written by the handler');
    return original.write.apply(response, args);
  };

  target.end = function (...args: unknown[]) {
    restore();
    if (!hooks.handlerSettled()) {
      sendHeldHead();
      hooks.unreplayable('written by the handler');
      return original.end.apply(response, args);
    }
    const captured: CapturedResponse = {
      status: response.statusCode,
      headers: { ...lowerCased(response.getHeaders()), ...(heldHead ? headersOfWriteHead(heldHead.slice(1)) : {}) },
      body: chunkToBuffer(args[0], args[1]),
    };
    void hooks
      .beforeSend(captured)
      .catch(() => undefined)
      .then((replacement) => {
        if (!replacement) {
          sendHeldHead();
          original.end.apply(response, args);
          return;
        }
        heldHead = undefined;
        for (const name of response.getHeaderNames()) response.removeHeader(name);
        original.writeHead.call(response, replacement.status, {
          ...replacement.headers,
          'content-length': String(replacement.body.length),
        });
        original.end.call(response, replacement.body);
      });
    return response;
  };
}

function lowerCased(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const result: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) result[name.toLowerCase()] = value;
  return result;
}

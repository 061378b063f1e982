import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { chunkToBuffer, headersOfWriteHead } from './outgoing-headers.js';

/** A response as the handler's side produced it: after serializers, interceptors and filters, before content coding. */
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
export type UnreplayableReason = 'streamed' | 'written by the handler' | 'content-encoded before the library saw it';

export interface CaptureHooks {
  /** Whether Nest has the handler's outcome; a write before that comes from the handler itself. */
  handlerSettled(): boolean;
  /**
   * The representation, when the platform transforms it before Node sees the bytes (Fastify's
   * `onSend` hooks); undefined when the bytes given to `end` are the representation (Express).
   */
  representation(): Buffer | undefined;
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
 * Intercepts the Node response under Express or Fastify to see what is really sent (R9, R16). The
 * status line, headers and body are held until `beforeSend` has stored the response, so a client
 * that has its answer can retry and find it. A response written in pieces by the handler's side (a
 * stream, SSE) or by the handler itself passes through untouched. Pieces that a content coding
 * writes after the handler (Fastify's compression streams its output) are held with the rest: the
 * representation they encode is already known and is what gets stored.
 */
export function captureResponse(response: ServerResponse, hooks: CaptureHooks): void {
  const target = response as unknown as Record<'writeHead' | 'write' | 'end', Method>;
  const original = { writeHead: target.writeHead, write: target.write, end: target.end };
  let heldHead: unknown[] | undefined;
  const heldWrites: unknown[][] = [];
  const restore = (): void => {
    target.writeHead = original.writeHead;
    target.write = original.write;
    target.end = original.end;
  };
  const sendHeld = (): void => {
    if (heldHead) original.writeHead.apply(response, heldHead);
    heldHead = undefined;
    for (const args of heldWrites.splice(0)) original.write.apply(response, args);
  };
  const passThrough = (reason: UnreplayableReason): void => {
    restore();
    sendHeld();
    hooks.unreplayable(reason);
  };

  // Fastify writes its status and headers here, just before end(); holding them keeps both open
  // until the outcome is stored.
  target.writeHead = function (...args: unknown[]) {
    if (!hooks.handlerSettled()) {
      // The handler's side writes its own head before it has an outcome (SSE, @Res()).
      passThrough('written by the handler');
      return original.writeHead.apply(response, args);
    }
    // Node asks again for a head it believes unsent (flushHeaders, the first write): the first one
    // given is the one that would have gone out.
    if (heldHead) return response;
    heldHead = args;
    if (typeof args[0] === 'number') response.statusCode = args[0];
    return response;
  };

  target.write = function (...args: unknown[]) {
    if (hooks.handlerSettled() && hooks.representation() !== undefined) {
      heldWrites.push(args);
      return true;
    }
    passThrough(hooks.handlerSettled() ? 'streamed' : 'written by the handler');
    return original.write.apply(response, args);
  };

  target.end = function (...args: unknown[]) {
    if (!hooks.handlerSettled()) {
      passThrough('written by the handler');
      return original.end.apply(response, args);
    }
    const headers = { ...lowerCased(response.getHeaders()), ...(heldHead ? headersOfWriteHead(heldHead.slice(1)) : {}) };
    const representation = hooks.representation();
    // Coded bytes without the representation they code cannot be replayed to a client that asks
    // for another coding, nor stored without the Content-Encoding that is never stored (R15).
    if (representation === undefined && isContentCoded(headers)) {
      passThrough('content-encoded before the library saw it');
      return original.end.apply(response, args);
    }
    restore();
    const captured: CapturedResponse = {
      status: response.statusCode,
      headers,
      body: representation ?? chunkToBuffer(args[0], args[1]),
    };
    void hooks
      .beforeSend(captured)
      .catch(() => undefined)
      .then((replacement) => {
        if (!replacement) {
          sendHeld();
          original.end.apply(response, args);
          return;
        }
        heldHead = undefined;
        heldWrites.length = 0;
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

function isContentCoded(headers: OutgoingHttpHeaders): boolean {
  const coding = headers['content-encoding'];
  return coding !== undefined && String(coding).trim().toLowerCase() !== 'identity';
}

function lowerCased(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const result: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) result[name.toLowerCase()] = value;
  return result;
}

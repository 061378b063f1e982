import type { ServerResponse } from 'node:http';
import type { PlatformReply, PlatformSend } from './platform-reply.js';

type Serializer = (payload: unknown) => string;

/** The parts of Fastify's reply the library uses, typed here so that Fastify stays an optional peer. */
export interface FastifyReplyLike {
  readonly raw: ServerResponse;
  readonly sent: boolean;
  send: PlatformSend;
  code(status: number): unknown;
  header(name: string, value: unknown): unknown;
  getHeader(name: string): unknown;
  getHeaders(): Record<string, unknown>;
  removeHeader(name: string): unknown;
  serializer(serializer: Serializer | null): unknown;
  serialize(payload: unknown): string;
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Fastify: `onSend` hooks (compression, ETags) transform the body between `reply.send` and Node, so
 * the representation is recorded where `send` hands it on: as given for bytes and strings, and, for
 * values Fastify serialises, from inside the serialisation (after `preSerialization` hooks, with the
 * route's own serialiser).
 */
export class FastifyReply implements PlatformReply {
  constructor(private readonly reply: FastifyReplyLike) {}

  replaceNextSend(sendInstead: (send: PlatformSend) => unknown): void {
    const reply = this.reply;
    reply.send = function () {
      delete (reply as Partial<FastifyReplyLike>).send;
      return sendInstead((payload) => reply.send(payload));
    };
  }

  recordRepresentation(): () => Buffer | undefined {
    const reply = this.reply;
    let representation: Buffer | undefined;
    const send = reply.send;
    // Stays in place for the whole exchange: Fastify's own error handling sends again on this reply.
    reply.send = function (payload?: unknown) {
      representation = undefined;
      if (!reply.sent && reply.getHeader('content-encoding') === undefined) {
        const known = representationSentAsIs(payload);
        if (known !== undefined) representation = known;
        else if (isSerialisedAsJson(payload) && sendsJson(reply)) {
          reply.serializer((value) => {
            reply.serializer(null); // back to the route's own serialiser, which this one only watches
            const text = reply.serialize(value);
            representation = Buffer.from(text, 'utf8');
            return text;
          });
        }
      }
      return send.call(reply, payload);
    };
    return () => representation;
  }

  setStatus(status: number): void {
    this.reply.code(status);
  }

  setHeader(name: string, value: string | readonly string[]): void {
    this.reply.header(name, value);
  }

  removeHeader(name: string): void {
    this.reply.removeHeader(name);
  }

  headerNames(): string[] {
    return Object.keys(this.reply.getHeaders());
  }
}

/** Bytes and strings reach `onSend` unchanged; undefined for anything else. */
function representationSentAsIs(payload: unknown): Buffer | undefined {
  if (payload === undefined) return Buffer.alloc(0);
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  if (ArrayBuffer.isView(payload)) return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return undefined;
}

/** A value Fastify turns into JSON: not a stream, a web Response or an Error (those take other paths). */
function isSerialisedAsJson(payload: unknown): boolean {
  if (payload === null) return true;
  if (typeof payload !== 'object') return typeof payload === 'number' || typeof payload === 'boolean';
  const candidate = payload as { pipe?: unknown; getReader?: unknown };
  return (
    !(payload instanceof Error) &&
    typeof candidate.pipe !== 'function' &&
    typeof candidate.getReader !== 'function' &&
    Object.prototype.toString.call(payload) !== '[object Response]'
  );
}

/**
 * Fastify sends such a value as JSON only when the reply has no content type or a JSON one. It sets
 * the type itself unless a serialiser is set, so with the recording serialiser in place the type is
 * set here exactly as Fastify would.
 */
function sendsJson(reply: FastifyReplyLike): boolean {
  const type = reply.getHeader('content-type');
  if (type === undefined) {
    reply.header('content-type', JSON_CONTENT_TYPE);
    return true;
  }
  if (typeof type !== 'string' || !type.toLowerCase().includes('json')) return false;
  if (!/;\s*charset=/i.test(type)) reply.header('content-type', `${type}; charset=utf-8`);
  return true;
}

import { IncomingMessage, ServerResponse } from 'node:http';
import type { ExecutionContext } from '@nestjs/common';
import { platformReplyOf, type PlatformReply } from './platform-reply.js';

/** What a fingerprint is computed from: one HTTP request, the same on Express and Fastify. */
export interface FingerprintInput {
  /** Upper-case method. */
  readonly method: string;
  /** Path as sent, route parameters' values included, without the query string. */
  readonly path: string;
  /** Query string as sent, without the `?`; empty when there is none. */
  readonly query: string;
  /** Request headers, lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body as the platform's parsers left it (an object for JSON), or undefined. */
  readonly body: unknown;
  /** The raw body bytes, when the app was created with `rawBody: true`. */
  readonly rawBody: Buffer | undefined;
}

/**
 * One HTTP request and its response, seen through Node's own objects, so that the library's
 * capture and replay work the same under Express (whose req/res are Node's) and Fastify (which
 * keeps them in `.raw`).
 */
export interface HttpExchange {
  /** The platform's request object (Express `Request`, `FastifyRequest`): what resolvers receive. */
  readonly request: unknown;
  readonly incoming: IncomingMessage;
  readonly outgoing: ServerResponse;
  /** The platform's response object, through which replays are sent. */
  readonly reply: PlatformReply;
  readonly fingerprintInput: FingerprintInput;
  /** `METHOD /route/:pattern`, for log lines and warnings. */
  readonly routeLabel: string;
}

interface PlatformRequest {
  raw?: unknown;
  method?: string;
  originalUrl?: string;
  url?: string;
  headers?: Record<string, string | string[] | undefined>;
  body?: unknown;
  rawBody?: unknown;
}

// The guard and the interceptor both look at each request: its view is built once and kept in a
// WeakMap (on Express 5 a property added to a request costs far more; see request-key.ts).
const exchanges = new WeakMap<object, HttpExchange>();

export function httpExchangeOf(context: ExecutionContext): HttpExchange {
  const http = context.switchToHttp();
  const request = http.getRequest<PlatformRequest>();
  let exchange = exchanges.get(request);
  if (!exchange) {
    exchange = buildExchange(context, request, http.getResponse<object>());
    exchanges.set(request, exchange);
  }
  return exchange;
}

function buildExchange(context: ExecutionContext, request: PlatformRequest, response: object): HttpExchange {
  const incoming = request instanceof IncomingMessage ? request : request.raw;
  const outgoing = response instanceof ServerResponse ? response : (response as { raw?: unknown }).raw;
  if (!(incoming instanceof IncomingMessage) || !(outgoing instanceof ServerResponse)) {
    throw new Error('nestjs-idempotency supports the Express and Fastify HTTP adapters only');
  }
  const url = request.originalUrl ?? request.url ?? incoming.url ?? '/';
  const queryStart = url.indexOf('?');
  const method = (request.method ?? incoming.method ?? 'GET').toUpperCase();
  return {
    request,
    incoming,
    outgoing,
    reply: platformReplyOf(response),
    routeLabel: `${method} ${queryStart === -1 ? url : url.slice(0, queryStart)} (${context.getClass().name}.${context.getHandler().name})`,
    fingerprintInput: {
      method,
      path: queryStart === -1 ? url : url.slice(0, queryStart),
      query: queryStart === -1 ? '' : url.slice(queryStart + 1),
      headers: request.headers ?? incoming.headers,
      body: request.body,
      rawBody: Buffer.isBuffer(request.rawBody) ? request.rawBody : undefined,
    },
  };
}

/** Every value of one header, in arrival order, even when it was sent more than once. */
export function headerValues(incoming: IncomingMessage, name: string): string[] {
  const lower = name.toLowerCase();
  const values: string[] = [];
  for (let i = 0; i < incoming.rawHeaders.length; i += 2) {
    if (incoming.rawHeaders[i].toLowerCase() === lower) values.push(incoming.rawHeaders[i + 1]);
  }
  return values;
}

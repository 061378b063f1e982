import { IncomingMessage, ServerResponse } from 'node:http';
import type { ExecutionContext } from '@nestjs/common';
import type { PlatformReply } from './platform-reply.js';
import { platformReplyOf } from './platform-reply-of.js';

/** What a fingerprint is computed from: one HTTP request, the same on Express and Fastify. */
export interface FingerprintInput {
  /** Upper-case method. */
  readonly method: string;
  /** Path as sent (percent-encoding kept), route parameters' values included, without the query string. */
  readonly path: string;
  /** Query string as sent (percent-encoding kept), without the `?`; empty when there is none. */
  readonly query: string;
  /** Request headers, lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body as the platform's parsers left it (an object for JSON), or undefined. */
  readonly body: unknown;
  /**
   * The body's bytes: kept by the platform's parser when the app was created with `rawBody: true`,
   * or read by the library when no parser took the body (e.g. `text/plain` on Express).
   */
  readonly rawBody: Buffer | undefined;
  /**
   * The route pattern the platform matched, e.g. `/v1/exports/:id` (the decoded path when there is
   * none). When absent, the built-in fingerprint uses `path`.
   */
  readonly route?: string;
  /** The route's path parameters, decoded, as the platform matched them (`{ id: 'exp_1' }`). Default `{}`. */
  readonly params?: Readonly<Record<string, unknown>>;
  /**
   * The query parameters as the platform parsed them (`?a=1&a=2` is `{ a: ['1', '2'] }`). When
   * absent, the built-in fingerprint parses `query` the same way.
   */
  readonly queryParams?: Readonly<Record<string, unknown>>;
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
  params?: Record<string, unknown>;
  query?: Record<string, unknown>;
  /** Express: the matched route, and the path its router is mounted at. */
  route?: { path?: unknown };
  baseUrl?: string;
  /** Fastify: the matched route. */
  routeOptions?: { url?: unknown };
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
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  let route: string | undefined;
  let queryParams: Readonly<Record<string, unknown>> | undefined;
  return {
    request,
    incoming,
    outgoing,
    reply: platformReplyOf(response),
    routeLabel: `${method} ${path} (${context.getClass().name}.${context.getHandler().name})`,
    fingerprintInput: {
      method,
      path,
      query: queryStart === -1 ? '' : url.slice(queryStart + 1),
      headers: request.headers ?? incoming.headers,
      body: request.body,
      rawBody: Buffer.isBuffer(request.rawBody) ? request.rawBody : undefined,
      // Read when a fingerprint is computed: every request passes through here, and Fastify's
      // routeOptions and Express's req.query are built anew on each read.
      get route() {
        route ??= routePatternOf(request) ?? decodedPath(path);
        return route;
      },
      params: request.params ?? {},
      get queryParams() {
        queryParams ??= queryStart === -1 ? {} : request.query;
        return queryParams;
      },
    },
  };
}

function routePatternOf(request: PlatformRequest): string | undefined {
  const fastifyPattern = request.routeOptions?.url;
  if (typeof fastifyPattern === 'string') return fastifyPattern;
  const expressPattern = request.route?.path;
  return typeof expressPattern === 'string' ? `${request.baseUrl ?? ''}${expressPattern}` : undefined;
}

function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
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

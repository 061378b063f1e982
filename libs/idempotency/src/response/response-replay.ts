import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { StoredResponse } from '../store/idempotency-store.js';
import { headersOfWriteHead } from './outgoing-headers.js';

/** The header that marks every replay and no fresh response (R13). */
export const REPLAYED_HEADER = 'Idempotency-Replayed';

// What the platform writes about its own (empty) body must not leak into a replay.
const BODY_HEADERS = ['content-type', 'content-length', 'etag', 'last-modified', 'content-encoding', 'transfer-encoding'];

type Method = (...args: unknown[]) => unknown;

// One set per route's stored-header list, built on its first replay rather than on every one.
const replacedByRoute = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();

function replacedHeadersFor(storedHeaderNames: ReadonlySet<string>): ReadonlySet<string> {
  let replaced = replacedByRoute.get(storedHeaderNames);
  if (!replaced) {
    replaced = new Set([...BODY_HEADERS, ...storedHeaderNames, REPLAYED_HEADER.toLowerCase()]);
    replacedByRoute.set(storedHeaderNames, replaced);
  }
  return replaced;
}

/**
 * Lets Nest answer the request as usual, then swaps what it writes for the stored response: the
 * stored status, headers and body bytes (R9). Headers the platform adds per request (CORS, security
 * headers, `Date`) are kept, except those that describe a body or that the route stores.
 */
export function replayStoredResponse(
  response: ServerResponse,
  stored: StoredResponse,
  storedHeaderNames: ReadonlySet<string>,
): void {
  const target = response as unknown as Record<'writeHead' | 'write' | 'end', Method>;
  const original = { writeHead: target.writeHead, write: target.write, end: target.end };
  const replaced = replacedHeadersFor(storedHeaderNames);
  const platformHeaders: OutgoingHttpHeaders = {};

  target.writeHead = function (...args: unknown[]) {
    Object.assign(platformHeaders, headersOfWriteHead(args.slice(1)));
    return response;
  };
  target.write = () => true;
  target.end = function (...args: unknown[]) {
    target.writeHead = original.writeHead;
    target.write = original.write;
    target.end = original.end;
    for (const name of response.getHeaderNames()) {
      if (replaced.has(name.toLowerCase())) response.removeHeader(name);
    }
    const kept = Object.fromEntries(Object.entries(platformHeaders).filter(([name]) => !replaced.has(name)));
    original.writeHead.call(response, stored.status, {
      ...kept,
      ...stored.headers,
      'content-length': String(stored.body.length),
      [REPLAYED_HEADER]: 'true',
    });
    const callback = args.find((arg) => typeof arg === 'function');
    return original.end.call(response, stored.body, callback);
  };
}

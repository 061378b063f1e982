import type { PlatformReply } from '../http/platform-reply.js';
import type { StoredResponse } from '../store/idempotency-store.js';

/** The header that marks every replay and no fresh response (R13). */
export const REPLAYED_HEADER = 'Idempotency-Replayed';

// Headers that describe a body: the platform writes them again for the stored one.
const BODY_HEADERS = ['content-type', 'content-length', 'etag', 'last-modified', 'content-encoding', 'transfer-encoding'];

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
 * Lets Nest answer the request as usual, then sends the stored status, headers and representation
 * through the platform's own send in place of what Nest sends (R9). Whatever runs after the handler
 * runs again, for this client: content coding by its Accept-Encoding, ETags, CORS and security
 * headers written per request. Headers that describe a body or that the route stores are replaced.
 */
export function replayStoredResponse(
  reply: PlatformReply,
  stored: StoredResponse,
  storedHeaderNames: ReadonlySet<string>,
): void {
  const replaced = replacedHeadersFor(storedHeaderNames);
  reply.replaceNextSend((send) => {
    for (const name of reply.headerNames()) {
      if (replaced.has(name.toLowerCase())) reply.removeHeader(name);
    }
    reply.setStatus(stored.status);
    for (const [name, value] of Object.entries(stored.headers)) reply.setHeader(name, value);
    reply.setHeader(REPLAYED_HEADER, 'true');
    // An empty body without a type was sent as "nothing" (Nest's undefined); bytes would get a type.
    const nothing = stored.body.length === 0 && stored.headers['content-type'] === undefined;
    return send(nothing ? undefined : stored.body);
  });
}

import type { IncomingMessage } from 'node:http';

// The guard validates the key and the interceptor uses it. It travels on the request under a
// symbol of this module's own, which application code cannot name; a symbol property costs far
// less per request than a WeakMap entry.
const KEY = Symbol('idempotency-key');

type CarriesKey = IncomingMessage & { [KEY]?: string };

export function rememberRequestKey(request: IncomingMessage, key: string): void {
  (request as CarriesKey)[KEY] = key;
}

export function requestKeyOf(request: IncomingMessage): string | undefined {
  return (request as CarriesKey)[KEY];
}

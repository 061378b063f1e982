import type { IncomingMessage } from 'node:http';

// The guard validates the key and the interceptor uses it. A WeakMap of this module's own, which
// application code cannot reach: on Express 5, whose requests have a swapped prototype, adding a
// property to a request costs microseconds, a WeakMap entry a fraction of one (measured).
const keys = new WeakMap<IncomingMessage, string>();

export function rememberRequestKey(request: IncomingMessage, key: string): void {
  keys.set(request, key);
}

export function requestKeyOf(request: IncomingMessage): string | undefined {
  return keys.get(request);
}

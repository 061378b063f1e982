import type { IncomingMessage } from 'node:http';

// The guard validates the key and the interceptor uses it; the request object carries it between
// them without adding a property that application code could read or overwrite.
const keys = new WeakMap<IncomingMessage, string>();

export function rememberRequestKey(request: IncomingMessage, key: string): void {
  keys.set(request, key);
}

export function requestKeyOf(request: IncomingMessage): string | undefined {
  return keys.get(request);
}

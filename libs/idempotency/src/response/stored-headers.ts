import type { OutgoingHttpHeaders } from 'node:http';

/** Response headers stored and replayed unless a route names more (R15). */
export const DEFAULT_STORED_HEADERS: readonly string[] = ['content-type', 'location', 'content-language'];

// Headers that belong to one exchange or one user, or that the server writes itself: replaying them
// would hand one client's cookie or credentials to a retry, or contradict the replayed body.
const NEVER_STORED = new Set([
  'set-cookie',
  'cookie',
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'proxy-authenticate',
  'content-length',
  'date',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'idempotency-replayed',
  // Content coding is negotiated per client and redone on every replay: the stored body is the
  // representation before any coding, and Vary is written by whatever codes it.
  'content-encoding',
  'vary',
]);

/** Throws, naming the header and where it was configured, if an option asks to store a forbidden one. */
export function assertStorableHeaders(names: readonly string[], where: string): void {
  for (const name of names) {
    if (NEVER_STORED.has(name.toLowerCase())) {
      throw new Error(
        `nestjs-idempotency: ${where} asks to store the "${name}" response header, which is never stored or ` +
          `replayed (it belongs to one client or is written by the server itself). Remove it from storedHeaders.`,
      );
    }
  }
}

/** Keeps the allow-listed headers of a sent response, lower-case names, values as strings. */
export function pickStoredHeaders(
  headers: OutgoingHttpHeaders,
  allowed: ReadonlySet<string>,
): Record<string, string | string[]> {
  const picked: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || !allowed.has(lower) || NEVER_STORED.has(lower)) continue;
    picked[lower] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return picked;
}

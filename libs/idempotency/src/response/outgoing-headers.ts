import type { OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';

/**
 * The headers passed to `writeHead(status, [reason], headers)`. Fastify hands all its headers
 * there rather than through `setHeader`, so they are invisible to `getHeaders()`.
 */
export function headersOfWriteHead(args: readonly unknown[]): OutgoingHttpHeaders {
  const candidate = typeof args[0] === 'string' ? args[1] : args[0];
  const headers: OutgoingHttpHeaders = {};
  if (Array.isArray(candidate)) {
    // The flat form: [name, value, name, value, ...].
    for (let i = 0; i + 1 < candidate.length; i += 2) {
      headers[String(candidate[i]).toLowerCase()] = candidate[i + 1] as OutgoingHttpHeader;
    }
  } else if (candidate && typeof candidate === 'object') {
    for (const [name, value] of Object.entries(candidate as OutgoingHttpHeaders)) {
      headers[name.toLowerCase()] = value;
    }
  }
  return headers;
}

/** The bytes of one `write`/`end` chunk, whatever form it came in. */
export function chunkToBuffer(chunk: unknown, encoding: unknown): Buffer {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return Buffer.alloc(0);
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk);
  return Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
}

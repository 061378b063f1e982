import type { FingerprintInput } from '../http/http-exchange.js';
import { hashCanonicalJson } from './canonical-json.js';
import { Sha256Sink } from './sha256-sink.js';

/** Replaces the built-in fingerprint: any stable string (a hash is best) that identifies the request. */
export type FingerprintFunction = (request: FingerprintInput) => string;

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i;
// Separates fields: none of method, path, query string or header values may contain a NUL byte,
// so no two different requests can frame into the same byte sequence.
const FIELD_END = '\u0000';

/**
 * SHA-256 over method, path, query string, the chosen headers and the body (R7). A JSON body is
 * hashed in canonical form, so a client that re-serialises the same data (other key order, other
 * whitespace) still matches; any other body is hashed as its bytes.
 */
export function fingerprintRequest(request: FingerprintInput, extraHeaders: readonly string[] = []): string {
  const sink = new Sha256Sink();
  writeField(sink, request.method.toUpperCase());
  writeField(sink, request.path);
  writeField(sink, request.query);
  for (const name of extraHeaders.length === 0 ? extraHeaders : normalisedHeaderNames(extraHeaders)) {
    const value = request.headers[name];
    writeField(sink, `${name}:${Array.isArray(value) ? value.join(', ') : (value ?? '')}`);
  }
  writeBody(sink, request);
  return sink.digest();
}

function normalisedHeaderNames(names: readonly string[]): string[] {
  return [...new Set(names.map((name) => name.toLowerCase()))].sort();
}

function writeField(sink: Sha256Sink, value: string): void {
  sink.update(value);
  sink.update(FIELD_END);
}

function writeBody(sink: Sha256Sink, request: FingerprintInput): void {
  const { body, rawBody } = request;
  const parsed = body !== undefined && body !== null && !Buffer.isBuffer(body);
  const isJson = JSON_MEDIA_TYPE.test(String(request.headers['content-type'] ?? ''));
  if (parsed && (isJson || (!rawBody && typeof body === 'object'))) {
    writeField(sink, 'json');
    hashCanonicalJson(body, sink);
    return;
  }
  const bytes = rawBody ?? (Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body, 'utf8') : undefined);
  if (bytes && bytes.length > 0) {
    writeField(sink, 'bytes');
    sink.updateBytes(bytes);
    return;
  }
  writeField(sink, 'empty');
}

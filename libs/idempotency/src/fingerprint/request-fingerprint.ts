import { createHash, type Hash } from 'node:crypto';
import type { FingerprintInput } from '../http/http-exchange.js';
import { hashCanonicalJson } from './canonical-json.js';

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
  const hash = createHash('sha256');
  writeField(hash, request.method.toUpperCase());
  writeField(hash, request.path);
  writeField(hash, request.query);
  for (const name of [...new Set(extraHeaders.map((header) => header.toLowerCase()))].sort()) {
    const value = request.headers[name];
    writeField(hash, `${name}:${Array.isArray(value) ? value.join(', ') : (value ?? '')}`);
  }
  writeBody(hash, request);
  return hash.digest('hex');
}

function writeField(hash: Hash, value: string): void {
  hash.update(value, 'utf8');
  hash.update(FIELD_END, 'utf8');
}

function writeBody(hash: Hash, request: FingerprintInput): void {
  const { body, rawBody } = request;
  const parsed = body !== undefined && body !== null && !Buffer.isBuffer(body);
  const isJson = JSON_MEDIA_TYPE.test(String(request.headers['content-type'] ?? ''));
  if (parsed && (isJson || (!rawBody && typeof body === 'object'))) {
    writeField(hash, 'json');
    hashCanonicalJson(body, hash);
    return;
  }
  const bytes = rawBody ?? (Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body, 'utf8') : undefined);
  if (bytes && bytes.length > 0) {
    writeField(hash, 'bytes');
    hash.update(bytes);
    return;
  }
  writeField(hash, 'empty');
}

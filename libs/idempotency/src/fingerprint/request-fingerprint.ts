import { isAscii, isUtf8 } from 'node:buffer';
import { parse as parseQueryString } from 'node:querystring';
import type { FingerprintInput } from '../http/http-exchange.js';
import { canonicalJson, hashCanonicalJson } from './canonical-json.js';
import { writeCanonicalJsonText } from './canonical-json-text.js';
import { Sha256Sink } from './sha256-sink.js';

/** Replaces the built-in fingerprint: any stable string (a hash is best) that identifies the request. */
export type FingerprintFunction = (request: FingerprintInput) => string;

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i;
// JSON is UTF-8 (RFC 8259); a body declared in another charset is hashed as its bytes.
const FOREIGN_CHARSET = /;\s*charset\s*=\s*(?!"?utf-?8"?\s*(?:;|$))/i;

// Separates fields: the route is written as a JSON string and parameters as canonical JSON, so
// none of them, nor method or header values, holds a NUL byte: no two different requests can
// frame into the same byte sequence.
const FIELD_END = '\u0000';

/**
 * SHA-256 over method, route, path parameters, query parameters, the chosen headers and the body
 * (R7). The route is the pattern the platform matched, with the decoded values of its parameters,
 * and the query its parameters as parsed, ordered by name: spellings the router treats as one
 * request are one request. A JSON body is hashed in canonical form, from its raw text where the
 * platform kept it, so a client that re-serialises the same data (other key order, other
 * whitespace, `1e3` for `1000`) still matches while numbers a double cannot hold stay apart; any
 * other body is hashed as its bytes.
 */
export function fingerprintRequest(request: FingerprintInput, extraHeaders: readonly string[] = []): string {
  const sink = new Sha256Sink();
  writeField(sink, request.method.toUpperCase());
  writeField(sink, JSON.stringify(request.route ?? request.path));
  writeField(sink, canonicalParameters(request.params));
  writeField(sink, canonicalParameters(request.queryParams ?? parseQueryString(request.query)));
  for (const name of extraHeaders.length === 0 ? extraHeaders : normalisedHeaderNames(extraHeaders)) {
    const value = request.headers[name];
    writeField(sink, `${name}:${Array.isArray(value) ? value.join(', ') : (value ?? '')}`);
  }
  writeBody(sink, request);
  return sink.digest();
}

/** Parameters as canonical JSON: ordered by name, the order of one name's values kept. */
function canonicalParameters(parameters: Readonly<Record<string, unknown>> | undefined): string {
  // Most routes have no parameters and most requests no query.
  for (const _name in parameters) return canonicalJson(parameters);
  return '{}';
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
  const contentType = String(request.headers['content-type'] ?? '');
  const isJson = JSON_MEDIA_TYPE.test(contentType);
  if (rawBody && rawBody.length > 0) {
    if (isJson && writeCanonicalJsonBytes(sink, rawBody, contentType)) return;
    writeField(sink, 'bytes');
    sink.updateBytes(rawBody);
    return;
  }
  // No raw bytes: the value the platform's parser left, numbers as the parser read them.
  const parsed = body !== undefined && body !== null && !Buffer.isBuffer(body);
  if (parsed && (isJson || typeof body === 'object')) {
    writeField(sink, 'json');
    hashCanonicalJson(body, sink);
    return;
  }
  const bytes = Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body, 'utf8') : undefined;
  if (bytes && bytes.length > 0) {
    writeField(sink, 'bytes');
    sink.updateBytes(bytes);
    return;
  }
  writeField(sink, 'empty');
}

/** Writes a JSON body's canonical text, unless its bytes are not UTF-8 JSON (then they count as bytes). */
function writeCanonicalJsonBytes(sink: Sha256Sink, bytes: Buffer, contentType: string): boolean {
  if (FOREIGN_CHARSET.test(contentType)) return false;
  // ASCII, the usual JSON body, decodes alike as Latin-1, which Node decodes an order of magnitude faster.
  const text = isAscii(bytes) ? bytes.toString('latin1') : isUtf8(bytes) ? bytes.toString('utf8') : undefined;
  if (text === undefined) return false;
  // Nothing is written for a text that is not JSON: the label only once it is known to be.
  let labelled = false;
  return writeCanonicalJsonText(text, (piece) => {
    if (!labelled) {
      writeField(sink, 'json');
      labelled = true;
    }
    sink.update(piece);
  });
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { apiError } from './api-error.js';

/**
 * JSON is UTF-8 (RFC 8259): a JSON body declaring another charset is refused with 415
 * `unsupported_media_type` before any parser reads it. Express's parser would decode UTF-16 and
 * refuse Latin-1; Fastify's would read either as UTF-8: this makes both answer alike.
 */
export function refuseNonUtf8Json(request: IncomingMessage, _response: ServerResponse, next: (error?: unknown) => void): void {
  const charset = jsonCharsetOf(request.headers['content-type']);
  if (charset === undefined || charset === 'utf-8') {
    next();
    return;
  }
  next(apiError(415, 'unsupported_media_type', `A JSON body must be UTF-8; this one declares charset=${charset}.`));
}

/** The lower-cased charset parameter of a JSON media type (`application/json`, `*\/*+json`), if any. */
function jsonCharsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const [mediaType, ...parameters] = contentType.split(';');
  const type = mediaType.trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) return undefined;
  for (const parameter of parameters) {
    const [name, value = ''] = parameter.split('=');
    if (name.trim().toLowerCase() === 'charset') return value.trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return undefined;
}

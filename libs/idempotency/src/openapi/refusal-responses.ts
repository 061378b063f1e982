import type { ContentObject, HeaderObject, ReferenceObject, SchemaObject } from '@nestjs/swagger';
import { defaultErrorFormatter, problemJsonErrorFormatter, renderIdempotencyError, type IdempotencyErrorFormatter } from '../errors/error-formatter.js';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import { IdempotencyKeyMissingError } from '../errors/idempotency-key-missing.error.js';
import { IdempotencyKeyReuseError } from '../errors/idempotency-key-reuse.error.js';
import { IdempotencyUnavailableError } from '../errors/idempotency-unavailable.error.js';
import type { IdempotencyError } from '../errors/idempotency.error.js';
import { InvalidIdempotencyKeyError } from '../errors/invalid-idempotency-key.error.js';
import type { ResolvedRouteOptions } from '../idempotency.options.js';
import { durationText } from './duration-text.js';
import { ERROR_BODY_SCHEMA, PROBLEM_DETAILS_SCHEMA } from './error-body-schemas.js';
import { describeKeyFormat } from '../key/idempotency-key.parser.js';

/** One answer of the library on a route, as the OpenAPI document shows it. */
export interface RefusalResponse {
  readonly status: number;
  readonly description: string;
  /** Absent when no answer of this status carries a header of its own. */
  readonly headers?: Record<string, HeaderObject>;
  readonly content: ContentObject;
}

interface Refusal {
  readonly error: IdempotencyError;
  /** When a client gets it, and what to do. */
  readonly when: string;
}

// The headers the library's refusals carry, by lower-case name.
const REFUSAL_HEADERS: Readonly<Record<string, HeaderObject>> = {
  'retry-after': { description: 'seconds to wait before retrying with the same key.', schema: { type: 'integer', minimum: 1 } },
};

/**
 * The 400, 409, 422 and 503 answers the library can give on a route (R2-R4, R10, R11, R18), each
 * with the body the configured formatter writes (R17) and an example per contract code, rendered
 * by the same code that renders the real answer.
 */
export function refusalResponses(headerName: string, route: ResolvedRouteOptions, formatter: IdempotencyErrorFormatter): RefusalResponse[] {
  const byStatus = new Map<number, Refusal[]>();
  for (const refusal of refusalsOf(headerName, route)) {
    const status = refusal.error.getStatus();
    byStatus.set(status, [...(byStatus.get(status) ?? []), refusal]);
  }
  return [...byStatus.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, refusals]) => responseOf(status, refusals, formatter));
}

function refusalsOf(headerName: string, route: ResolvedRouteOptions): Refusal[] {
  const waited = route.inFlightWaitMs > 0 ? ` (this one waited up to ${durationText(route.inFlightWaitMs)} for it)` : '';
  return [
    ...(route.required
      ? [{ error: new IdempotencyKeyMissingError(headerName), when: `the request has no ${headerName} header, which this endpoint requires.` }]
      : []),
    {
      error: new InvalidIdempotencyKeyError(headerName, describeKeyFormat(route.keyFormat)),
      when: `the ${headerName} header is not a ${describeKeyFormat(route.keyFormat)}, is empty, is sent twice or holds control characters.`,
    },
    {
      error: new IdempotencyConflictError(1),
      when: `a request with this key is still being processed${waited}: retry with the same key after \`Retry-After\` seconds.`,
    },
    {
      error: new IdempotencyKeyReuseError(route.mismatchStatus),
      when: 'this key was already used with a different request (body, query or path): use a new key for a new request.',
    },
    {
      error: new IdempotencyUnavailableError(),
      when: 'the idempotency store cannot be reached, so the request was not processed: retry with the same key.',
    },
  ];
}

function responseOf(status: number, refusals: readonly Refusal[], formatter: IdempotencyErrorFormatter): RefusalResponse {
  const content: ContentObject = {};
  const headerCodes = new Map<string, string[]>();
  for (const { error } of refusals) {
    const rendered = renderIdempotencyError(error, formatter);
    const example = JSON.parse(rendered.body) as unknown;
    const mediaType = mediaTypeOf(rendered.headers['content-type']);
    const media = (content[mediaType] ??= { schema: schemaOf(formatter, example), examples: {} });
    media.examples![error.code] = { summary: error.code, value: example };
    for (const name of Object.keys(rendered.headers)) {
      if (name.toLowerCase() !== 'content-type') headerCodes.set(name, [...(headerCodes.get(name) ?? []), error.code]);
    }
  }
  return {
    status,
    description: refusals.map(({ error, when }) => `\`${error.code}\`: ${when}`).join('\n\n'),
    ...(headerCodes.size > 0 ? { headers: headersOf(headerCodes, refusals.length) } : {}),
    content,
  };
}

/** The headers of one status's refusals; one sent with only some of its codes says with which. */
function headersOf(codesByHeader: ReadonlyMap<string, readonly string[]>, refusalCount: number): Record<string, HeaderObject> {
  const headers: Record<string, HeaderObject> = {};
  for (const [name, codes] of codesByHeader) {
    const { description = '', schema = { type: 'string' } } = REFUSAL_HEADERS[name.toLowerCase()] ?? {};
    const always = codes.length === refusalCount;
    headers[name] = {
      description: always ? capitalised(description) : `With ${codes.map((code) => `\`${code}\``).join(', ')}: ${description}`,
      required: always,
      schema,
    };
  }
  return headers;
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// Parameters such as charset are not part of an OpenAPI media type key.
function mediaTypeOf(contentType: string | undefined): string {
  return contentType?.split(';')[0].trim() || 'application/json';
}

function schemaOf(formatter: IdempotencyErrorFormatter, example: unknown): SchemaObject | ReferenceObject {
  if (formatter === defaultErrorFormatter) return { $ref: `#/components/schemas/${ERROR_BODY_SCHEMA}` };
  if (formatter === problemJsonErrorFormatter) return { $ref: `#/components/schemas/${PROBLEM_DETAILS_SCHEMA}` };
  // An application's own formatter: its shape is only known from what it writes.
  if (Array.isArray(example)) return { type: 'array' };
  if (example === null) return { nullable: true };
  return { type: typeof example === 'object' ? 'object' : typeof example };
}

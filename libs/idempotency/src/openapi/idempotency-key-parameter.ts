import type { ApiHeaderOptions } from '@nestjs/swagger';
import type { ResolvedRouteOptions } from '../idempotency.options.js';
import { REPLAYED_HEADER } from '../response/response-replay.js';
import { defaultStoreResponse } from '../response/stored-status-policy.js';
import { durationText } from './duration-text.js';
import { describeKeyFormat } from '../key/idempotency-key.parser.js';
import { keyFormatSchema } from './key-format-schema.js';

/**
 * The key header of an idempotent route as an OpenAPI parameter (R1-R3): its configured name,
 * required or not, its format, and what a client gets back when it sends a key again (R9-R11).
 */
export function idempotencyKeyParameter(headerName: string, route: ResolvedRouteOptions): ApiHeaderOptions {
  return {
    name: headerName,
    required: route.required,
    description: describeKey(route),
    schema: keyFormatSchema(route.keyFormat),
  };
}

function describeKey(route: ResolvedRouteOptions): string {
  const wait =
    route.inFlightWaitMs > 0
      ? `the retry waits up to ${durationText(route.inFlightWaitMs)} for it, then gets its response as a replay, ` +
        'or 409 `idempotency_conflict` with `Retry-After`.'
      : 'the retry gets 409 `idempotency_conflict` with `Retry-After` at once.';
  const paragraphs = [
    'Makes this request safe to retry: send a new key for each new operation, and the same key with the same request ' +
      `on every retry of it. A key is kept, per account, for ${durationText(route.ttlMs)} after its response.`,
    [
      `- Same key, same request, the first one completed: its stored response is sent again, with \`${REPLAYED_HEADER}: true\`; ` +
        'the request does not run twice.',
      `- Same key, a different request (body, query or path): ${route.mismatchStatus} \`idempotency_key_reuse\`.`,
      `- Same key while the first request is still running: ${wait}`,
    ].join('\n'),
  ];
  if (route.storeResponse === defaultStoreResponse) {
    paragraphs.push(
      'Answers that mean the request did not really run (400, 401, 403, 408, 409, 423, 425, 429 and 5xx) are not kept: ' +
        'a retry with the same key runs the request.',
    );
  }
  paragraphs.push(
    route.required
      ? 'Required: a request without it is refused with 400 `idempotency_key_missing`.'
      : 'Optional: a request without it runs normally, without this protection.',
    `Format: a ${describeKeyFormat(route.keyFormat)}, also accepted as a quoted string (\`"..."\`). ` +
      'Anything else, an empty value or two of these headers: 400 `invalid_idempotency_key`.',
  );
  return paragraphs.join('\n\n');
}

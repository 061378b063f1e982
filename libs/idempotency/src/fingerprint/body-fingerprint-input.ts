import { IdempotencyBodyUnreadableError } from '../errors/idempotency-body-unreadable.error.js';
import type { FingerprintInput, HttpExchange } from '../http/http-exchange.js';
import { announcesBody, readRequestBody, UNPARSED_BODY_LIMIT_BYTES } from './request-body.js';

// One reading per request, whoever asks first: a second reader would find the stream read.
const inputs = new WeakMap<HttpExchange, Promise<FingerprintInput>>();

/**
 * The request's fingerprint input with its body's bytes in `rawBody` (R7): the platform's raw
 * body where it kept one; else, when no parser read the body (on Express, every media type but
 * JSON and forms), the bytes read from the request stream and put back for the handler. A body
 * something else consumed is counted by the value its parser left; with no value either, it is
 * refused (400 `idempotency_body_unreadable`), never hashed as empty. Past `limitBytes`, 413.
 */
export function bodyFingerprintInput(exchange: HttpExchange, limitBytes: number = UNPARSED_BODY_LIMIT_BYTES): Promise<FingerprintInput> {
  let input = inputs.get(exchange);
  if (!input) {
    input = withBody(exchange, limitBytes);
    inputs.set(exchange, input);
  }
  return input;
}

async function withBody({ fingerprintInput: input, incoming }: HttpExchange, limitBytes: number): Promise<FingerprintInput> {
  if (input.rawBody !== undefined || !announcesBody(incoming)) return input;
  if (incoming.readableDidRead) {
    if (input.body !== undefined) return input;
    throw new IdempotencyBodyUnreadableError();
  }
  // Ended without a byte: an empty body that something read to its end.
  if (incoming.readableEnded) return input;
  if (incoming.destroyed) throw new IdempotencyBodyUnreadableError();
  return { ...input, rawBody: await readRequestBody(incoming, limitBytes) };
}

import { HttpStatus } from '@nestjs/common';
import { IdempotencyError } from './idempotency.error.js';

/** 413: a body that no parser read is larger than the library holds in memory to fingerprint it (R7). */
export class IdempotencyBodyTooLargeError extends IdempotencyError {
  constructor(limitBytes: number) {
    super(
      'idempotency_body_too_large',
      `The request body is larger than the ${limitBytes} bytes an idempotent request may carry unparsed; it was not processed.`,
      HttpStatus.PAYLOAD_TOO_LARGE,
    );
  }
}

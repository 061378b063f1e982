import type { SchemaObject } from '@nestjs/swagger';
import type { IdempotencyKeyFormat } from '../key/idempotency-key.parser.js';

// What idempotency-key.parser.ts accepts for 'token' keys (R3), as an ECMA-262 pattern.
const TOKEN_PATTERN = '^[\\x20-\\x7E]+$';
const MAX_TOKEN_LENGTH = 255;

/** The schema of the key header for a key format (R3); a custom validator is documented as a plain string. */
export function keyFormatSchema(format: IdempotencyKeyFormat): SchemaObject {
  if (format === 'uuid') return { type: 'string', format: 'uuid', example: '8e03978e-40d5-43e8-bc93-6894a57f9324' };
  if (format === 'token') {
    return { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH, pattern: TOKEN_PATTERN, example: 'checkout:7f3c9a21' };
  }
  return { type: 'string' };
}

import { IdempotencyKeyMissingError } from '../errors/idempotency-key-missing.error.js';
import type { KeyCarrier } from '../errors/idempotency.error.js';
import { InvalidIdempotencyKeyError } from '../errors/invalid-idempotency-key.error.js';
import type { ResolvedRouteOptions } from '../idempotency.options.js';
import { describeKeyFormat, parseIdempotencyKey } from './idempotency-key.parser.js';

/** Where a key was looked for, for the refusal's message: the `Idempotency-Key` header, the `eventId` property. */
export interface KeyLocation {
  readonly name: string;
  readonly carrier: KeyCarrier;
}

/**
 * The key a handler runs with, from the values found where its key is carried (R2-R4): undefined
 * when there is none and none is required; a refusal when a required key is missing or a key is
 * malformed. Routes, GraphQL mutations and message handlers all decide through here.
 */
export function acceptKey(values: readonly string[], location: KeyLocation, route: Pick<ResolvedRouteOptions, 'keyFormat' | 'required'>): string | undefined {
  const parsed = parseIdempotencyKey(values, route.keyFormat);
  if (parsed.ok) return parsed.key;
  if (parsed.failure === 'invalid') throw new InvalidIdempotencyKeyError(location.name, describeKeyFormat(route.keyFormat), location.carrier);
  if (route.required) throw new IdempotencyKeyMissingError(location.name, location.carrier);
  return undefined;
}

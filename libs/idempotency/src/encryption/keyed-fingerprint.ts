import { createHmac } from 'node:crypto';
import { fingerprintRequest, type FingerprintFunction } from '../fingerprint/request-fingerprint.js';

/**
 * The built-in fingerprint keyed with a secret (R26): HMAC-SHA256 of the SHA-256 fingerprint (R7),
 * 64 hex characters like it. Whoever reads the table cannot confirm a guessed request body by
 * hashing it, and the same request still matches on every instance that holds the same key.
 */
export function keyedFingerprint(macKey: Buffer, extraHeaders: readonly string[] = []): FingerprintFunction {
  return (request) => createHmac('sha256', macKey).update(fingerprintRequest(request, extraHeaders)).digest('hex');
}

import { createHmac } from 'node:crypto';

/**
 * A fingerprint a caller computed itself (`runOnce`'s `fingerprint`), keyed like the built-in one
 * (R26): with encryption on, the table holds HMAC-SHA256 of it, so a caller's plain hash of a
 * webhook body does not let whoever reads the table confirm a guessed body.
 */
export function keyedCallerFingerprint(macKey: Buffer, fingerprint: string): string {
  return createHmac('sha256', macKey).update(`caller\u0000${fingerprint}`).digest('hex');
}

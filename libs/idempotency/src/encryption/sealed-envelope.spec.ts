import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { Keyring } from './keyring.js';
import { ENVELOPE_VERSION, EnvelopeOpenError, openEnvelope, sealEnvelope } from './sealed-envelope.js';

const fingerprintKey = randomBytes(32);
const keyringOf = (...keys: Buffer[]): Keyring => Keyring.from({ keys, fingerprintKey });
const context = Buffer.from('acme/8e03978e-40d5-43e8-bc93-6894a57f9324/201');
const plaintext = Buffer.from('{"id":"pay_1","customerId":"cus_marker"}');

/** The error `open` throws; fails the test if it opens. */
function openFailure(open: () => unknown): EnvelopeOpenError {
  try {
    open();
  } catch (error) {
    expect(error).toBeInstanceOf(EnvelopeOpenError);
    return error as EnvelopeOpenError;
  }
  throw new Error('expected the envelope not to open, and it opened');
}

describe('sealed envelope (R26)', () => {
  const key = randomBytes(32);
  const keyring = keyringOf(key);

  it('opens to the bytes it sealed, and holds none of them in the clear (R26)', () => {
    const sealed = sealEnvelope(keyring.sealing, plaintext, context);
    expect(openEnvelope(keyring, sealed, context).equals(plaintext)).toBe(true);
    expect(sealed.includes(Buffer.from('cus_marker'))).toBe(false);
  });

  it('is [version][key id][iv 12][tag 16][ciphertext], the ciphertext as long as the plaintext (R26)', () => {
    const sealed = sealEnvelope(keyring.sealing, plaintext, context);
    expect(sealed[0]).toBe(ENVELOPE_VERSION);
    expect(sealed.subarray(1, 5).equals(keyring.sealing.id)).toBe(true);
    expect(sealed).toHaveLength(1 + 4 + 12 + 16 + plaintext.length);
  });

  it('uses a fresh IV for every seal, so equal responses give different bytes (R26)', () => {
    const first = sealEnvelope(keyring.sealing, plaintext, context);
    const second = sealEnvelope(keyring.sealing, plaintext, context);
    expect(first.subarray(5, 17).equals(second.subarray(5, 17))).toBe(false);
    expect(first.equals(second)).toBe(false);
  });

  it('seals and opens an empty body (R26)', () => {
    const sealed = sealEnvelope(keyring.sealing, Buffer.alloc(0), context);
    expect(openEnvelope(keyring, sealed, context)).toHaveLength(0);
  });

  it('refuses to open after any one byte is flipped, header, IV, tag or ciphertext alike (R26)', () => {
    const sealed = sealEnvelope(keyring.sealing, plaintext, context);
    for (let index = 0; index < sealed.length; index++) {
      const tampered = Buffer.from(sealed);
      tampered[index] ^= 0x01;
      expect(() => openEnvelope(keyring, tampered, context)).toThrow(EnvelopeOpenError);
    }
  });

  it('refuses a tampered record with a message naming the key id only (R26)', () => {
    const sealed = sealEnvelope(keyring.sealing, plaintext, context);
    sealed[sealed.length - 1] ^= 0xff;
    const error = openFailure(() => openEnvelope(keyring, sealed, context));
    expect(error.keyId).toBe(keyring.sealing.idHex);
    expect(error.message).toContain(keyring.sealing.idHex);
    expect(error.message).not.toContain(key.toString('base64'));
    expect(error.message).not.toContain(key.toString('hex'));
  });

  it('refuses bytes sealed for another record: the associated data is authenticated (R26)', () => {
    const sealed = sealEnvelope(keyring.sealing, plaintext, context);
    expect(() => openEnvelope(keyring, sealed, Buffer.from('globex/8e03978e-40d5-43e8-bc93-6894a57f9324/201'))).toThrow(
      /fails authentication/,
    );
  });

  it('refuses a record sealed with a key that is not configured, naming its key id (R26)', () => {
    const retired = keyringOf(randomBytes(32));
    const sealed = sealEnvelope(retired.sealing, plaintext, context);
    const error = openFailure(() => openEnvelope(keyring, sealed, context));
    expect(error.keyId).toBe(retired.sealing.idHex);
    expect(error.message).toContain(`key id ${retired.sealing.idHex}, which is not among encryption.keys`);
  });

  it('refuses bytes that were never sealed, and truncated ones (R26)', () => {
    expect(openFailure(() => openEnvelope(keyring, Buffer.from('{"id":"pay_1"}'), context)).message).toMatch(/not a sealed value/);
    expect(openFailure(() => openEnvelope(keyring, Buffer.alloc(0), context)).message).toMatch(/not a sealed value/);
    const sealed = sealEnvelope(keyring.sealing, plaintext, context);
    expect(openFailure(() => openEnvelope(keyring, sealed.subarray(0, 20), context)).message).toMatch(/shorter than/);
  });

  it('opens records of an older key after rotation to [new, old], and seals new ones with the new key (R26)', () => {
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const before = keyringOf(oldKey);
    const rotated = keyringOf(newKey, oldKey);
    const sealedBefore = sealEnvelope(before.sealing, plaintext, context);
    expect(openEnvelope(rotated, sealedBefore, context).equals(plaintext)).toBe(true);
    const sealedAfter = sealEnvelope(rotated.sealing, plaintext, context);
    expect(sealedAfter.subarray(1, 5).equals(keyringOf(newKey).sealing.id)).toBe(true);
    expect(openEnvelope(keyringOf(newKey), sealedAfter, context).equals(plaintext)).toBe(true);
    expect(() => openEnvelope(keyringOf(newKey), sealedBefore, context)).toThrow(/not among encryption.keys/);
  });
});

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KEY_ID_BYTES, type EncryptionKey, type Keyring } from './keyring.js';

/**
 * The bytes of one sealed value (R26), AES-256-GCM:
 *
 * ```
 * [version: 1 byte = 1][key id: 4][iv: 12][auth tag: 16][ciphertext]
 * ```
 *
 * The version and key id are authenticated with the caller's associated data, so a record whose
 * header, ciphertext or context was changed fails to open instead of opening as something else.
 */
export const ENVELOPE_VERSION = 1;

const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES;
const IV_START = HEADER_BYTES;
const TAG_START = IV_START + IV_BYTES;
const CIPHERTEXT_START = TAG_START + TAG_BYTES;

/** Why a sealed value cannot be opened: never its key, only the key's id. */
export class EnvelopeOpenError extends Error {
  constructor(
    message: string,
    /** The id of the key the value names, when it could be read. */
    readonly keyId: string | undefined,
  ) {
    super(message);
    this.name = 'EnvelopeOpenError';
  }
}

/** Encrypts `plaintext` with `key` under a fresh random IV, bound to `associatedData`. */
export function sealEnvelope(key: EncryptionKey, plaintext: Buffer, associatedData: Buffer): Buffer {
  const header = Buffer.concat([Buffer.of(ENVELOPE_VERSION), key.id]);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, key.secret, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.concat([header, associatedData]));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, iv, cipher.getAuthTag(), ciphertext]);
}

/**
 * Decrypts a sealed value with whichever configured key its id names, checking its tag against
 * the same `associatedData` it was sealed with. Throws {@link EnvelopeOpenError} otherwise.
 */
export function openEnvelope(keyring: Keyring, envelope: Buffer, associatedData: Buffer): Buffer {
  if (envelope[0] !== ENVELOPE_VERSION) {
    throw new EnvelopeOpenError('it is not a sealed value of a version this library knows (stored without encryption?)', undefined);
  }
  if (envelope.length < CIPHERTEXT_START) {
    throw new EnvelopeOpenError(`it is ${envelope.length} bytes, shorter than a sealed value's header`, undefined);
  }
  const id = envelope.subarray(1, HEADER_BYTES);
  const key = keyring.opening(id);
  if (!key) {
    throw new EnvelopeOpenError(
      `it was sealed with key id ${id.toString('hex')}, which is not among encryption.keys (configured: ${keyring.keyIds.join(', ')})`,
      id.toString('hex'),
    );
  }
  const decipher = createDecipheriv(CIPHER, key.secret, envelope.subarray(IV_START, TAG_START), { authTagLength: TAG_BYTES });
  decipher.setAuthTag(envelope.subarray(TAG_START, CIPHERTEXT_START));
  decipher.setAAD(Buffer.concat([envelope.subarray(0, HEADER_BYTES), associatedData]));
  try {
    return Buffer.concat([decipher.update(envelope.subarray(CIPHERTEXT_START)), decipher.final()]);
  } catch {
    throw new EnvelopeOpenError(
      `it fails authentication under key id ${key.idHex}: the stored bytes were changed or belong to another record`,
      key.idHex,
    );
  }
}

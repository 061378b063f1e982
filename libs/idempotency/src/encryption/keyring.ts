import { createHash, hkdfSync } from 'node:crypto';
import { inspect } from 'node:util';

/** Encryption at rest of stored responses (R26). */
export interface IdempotencyEncryptionOptions {
  /**
   * AES-256-GCM keys of 32 bytes, as Buffers or base64 text. The first seals every new record and
   * every one opens. To rotate: deploy `[old, new]` to every instance, then `[new, old]`, then,
   * once `ttl` has passed, `[new]`; an instance never meets a record sealed with a key it lacks.
   */
  keys: ReadonlyArray<Buffer | string>;
  /**
   * A secret of 32 bytes (Buffer or base64) that keys request fingerprints (HMAC-SHA256). It stays
   * the same when `keys` rotate: a record's retries must produce its fingerprint for its whole ttl.
   */
  fingerprintKey: Buffer | string;
}

/** One encryption key and the id that names it in sealed records. */
export interface EncryptionKey {
  /** {@link KEY_ID_BYTES} bytes derived from the key: what a record carries instead of the key. */
  readonly id: Buffer;
  /** `id` as hex, for log lines and error messages. */
  readonly idHex: string;
  readonly secret: Buffer;
}

/** How many bytes of a key's SHA-256 name it in a sealed record: enough to tell keys apart, no more. */
export const KEY_ID_BYTES = 4;
const KEY_BYTES = 32;

// Domain labels: a key id and the fingerprint MAC key are derived from secrets under labels of their
// own, so no secret is ever used raw for two purposes, and the id reveals nothing usable of the key.
const KEY_ID_LABEL = 'nestjs-idempotency/key-id/v1\u0000';
const FINGERPRINT_KEY_LABEL = 'nestjs-idempotency/fingerprint-mac/v1';
const OPTION_NAMES = ['keys', 'fingerprintKey'];
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
const KEY_HINT = `a Buffer, or base64 of ${KEY_BYTES} random bytes such as \`openssl rand -base64 ${KEY_BYTES}\` prints`;

/**
 * The keys of the `encryption` option, decoded once: the key that seals, every key that opens,
 * found by id, and the MAC key of fingerprints. Never prints key material (see `inspect`).
 */
export class Keyring {
  private readonly byId: ReadonlyMap<string, EncryptionKey>;

  private constructor(
    /** The first key: every new record is sealed with it. */
    readonly sealing: EncryptionKey,
    keys: readonly EncryptionKey[],
    /** HKDF-SHA256 of `fingerprintKey`: keys the request fingerprint (HMAC-SHA256). */
    readonly fingerprintMacKey: Buffer,
  ) {
    this.byId = new Map(keys.map((key) => [key.idHex, key]));
  }

  /** Decodes validated options; throws, naming the option and never the key, if they are not valid. */
  static from(options: IdempotencyEncryptionOptions): Keyring {
    const problems = encryptionOptionProblems(options);
    if (problems.length > 0) throw new Error(`nestjs-idempotency: invalid "encryption" option: ${problems.join('; ')}`);
    const keys = options.keys.map((value) => encryptionKeyOf(decodeSecret(value) as Buffer));
    const macKey = Buffer.from(
      hkdfSync('sha256', decodeSecret(options.fingerprintKey) as Buffer, Buffer.alloc(0), FINGERPRINT_KEY_LABEL, KEY_BYTES),
    );
    return new Keyring(keys[0], keys, macKey);
  }

  /** The key whose id a sealed record carries, or undefined when it is not configured (any more). */
  opening(id: Buffer): EncryptionKey | undefined {
    return this.byId.get(id.toString('hex'));
  }

  /** The ids of every configured key, the sealing key first. */
  get keyIds(): string[] {
    return [...this.byId.keys()];
  }

  toJSON(): { keyIds: string[] } {
    return { keyIds: this.keyIds };
  }

  [inspect.custom](): string {
    return `Keyring { keyIds: [${this.keyIds.join(', ')}] }`;
  }
}

/** The id a record sealed with `secret` carries: the first bytes of a labelled SHA-256 of the key. */
export function keyIdOf(secret: Buffer): Buffer {
  return createHash('sha256').update(KEY_ID_LABEL).update(secret).digest().subarray(0, KEY_ID_BYTES);
}

/**
 * What is wrong with an `encryption` option value, each naming the option at fault; empty when
 * it is valid. Messages never contain key material.
 */
export function encryptionOptionProblems(value: unknown): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return ['encryption must be { keys: [...], fingerprintKey }'];
  }
  const options = value as Record<string, unknown>;
  const problems = Object.keys(options)
    .filter((name) => !OPTION_NAMES.includes(name))
    .map((name) => `encryption.${name} is not an option (known: ${OPTION_NAMES.join(', ')})`);
  problems.push(...keysProblems(options.keys));
  if (options.fingerprintKey === undefined) {
    problems.push(
      `encryption.fingerprintKey is missing: ${KEY_BYTES} secret bytes (${KEY_HINT}) that key request fingerprints ` +
        'and stay the same when encryption.keys rotate',
    );
  } else {
    problems.push(...secretProblems(options.fingerprintKey, 'encryption.fingerprintKey'));
  }
  return problems;
}

function keysProblems(keys: unknown): string[] {
  if (!Array.isArray(keys) || keys.length === 0) {
    return ['encryption.keys must list at least one key (the first seals new records, every one opens)'];
  }
  const problems: string[] = [];
  const seen = new Map<string, number>();
  keys.forEach((key: unknown, index) => {
    const name = `encryption.keys[${index}]`;
    const found = secretProblems(key, name);
    problems.push(...found);
    if (found.length > 0) return;
    const id = keyIdOf(decodeSecret(key) as Buffer).toString('hex');
    const first = seen.get(id);
    if (first === undefined) seen.set(id, index);
    else problems.push(`${name} is the same key as encryption.keys[${first}] (key id ${id})`);
  });
  return problems;
}

function secretProblems(value: unknown, name: string): string[] {
  const secret = decodeSecret(value);
  if (secret === undefined) return [`${name} must be ${KEY_HINT}`];
  if (secret.length !== KEY_BYTES) return [`${name} is ${secret.length} bytes; it must be ${KEY_BYTES} (${KEY_HINT})`];
  return [];
}

function decodeSecret(value: unknown): Buffer | undefined {
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  return BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
}

function encryptionKeyOf(secret: Buffer): EncryptionKey {
  const id = keyIdOf(secret);
  return { id, idHex: id.toString('hex'), secret };
}

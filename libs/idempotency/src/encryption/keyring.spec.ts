import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { encryptionOptionProblems, keyIdOf, Keyring } from './keyring.js';

const secret = (): Buffer => randomBytes(32);

describe('Keyring (R26)', () => {
  it('accepts keys as Buffers and as base64 text, and the first seals (R26)', () => {
    const [first, second] = [secret(), secret()];
    const keyring = Keyring.from({ keys: [first.toString('base64'), second], fingerprintKey: secret() });
    expect(keyring.sealing.secret.equals(first)).toBe(true);
    expect(keyring.opening(keyIdOf(second))?.secret.equals(second)).toBe(true);
    expect(keyring.keyIds).toEqual([keyIdOf(first).toString('hex'), keyIdOf(second).toString('hex')]);
  });

  it('names each key by a short id derived from it, stable, 8 hex characters, never the key itself (R26)', () => {
    const key = secret();
    const id = keyIdOf(key);
    expect(id.toString('hex')).toMatch(/^[0-9a-f]{8}$/);
    expect(keyIdOf(Buffer.from(key)).equals(id)).toBe(true);
    expect(key.includes(id)).toBe(false);
    expect(keyIdOf(secret()).equals(id)).toBe(false);
  });

  it('derives a fingerprint MAC key that is neither the fingerprint secret nor any encryption key (R26)', () => {
    const [key, fingerprintKey] = [secret(), secret()];
    const keyring = Keyring.from({ keys: [key], fingerprintKey });
    expect(keyring.fingerprintMacKey).toHaveLength(32);
    expect(keyring.fingerprintMacKey.equals(fingerprintKey)).toBe(false);
    expect(keyring.fingerprintMacKey.equals(key)).toBe(false);
    const rotated = Keyring.from({ keys: [secret(), key], fingerprintKey });
    expect(rotated.fingerprintMacKey.equals(keyring.fingerprintMacKey)).toBe(true);
  });

  it('never prints key material when logged or serialised (R26)', () => {
    const [key, fingerprintKey] = [secret(), secret()];
    const keyring = Keyring.from({ keys: [key], fingerprintKey });
    const printed = `${inspect(keyring)} ${JSON.stringify(keyring)} ${inspect({ options: keyring })}`;
    for (const material of [key, fingerprintKey, keyring.fingerprintMacKey]) {
      expect(printed).not.toContain(material.toString('base64'));
      expect(printed).not.toContain(material.toString('hex'));
    }
    expect(printed).toContain(keyring.sealing.idHex);
  });
});

describe('encryptionOptionProblems names the option at fault (R26)', () => {
  const valid = { keys: [secret()], fingerprintKey: secret() };

  it('finds nothing wrong with valid options', () => {
    expect(encryptionOptionProblems(valid)).toEqual([]);
    expect(encryptionOptionProblems({ keys: [secret().toString('base64url')], fingerprintKey: ` ${secret().toString('base64')}\n` })).toEqual([]);
  });

  it.each([
    ['an empty key list', { ...valid, keys: [] }, 'encryption.keys must list at least one key'],
    ['no key list', { fingerprintKey: secret() }, 'encryption.keys must list at least one key'],
    ['a 16-byte key', { ...valid, keys: [secret(), randomBytes(16)] }, 'encryption.keys[1] is 16 bytes; it must be 32'],
    ['a 16-byte base64 key', { ...valid, keys: [randomBytes(16).toString('base64')] }, 'encryption.keys[0] is 16 bytes'],
    ['a key that is not base64', { ...valid, keys: ['not a key!'] }, 'encryption.keys[0] must be a Buffer, or base64'],
    ['a key that is a number', { ...valid, keys: [42] }, 'encryption.keys[0] must be'],
    ['no fingerprint key', { keys: [secret()] }, 'encryption.fingerprintKey is missing'],
    ['a short fingerprint key', { ...valid, fingerprintKey: randomBytes(8) }, 'encryption.fingerprintKey is 8 bytes'],
    ['an unknown option', { ...valid, key: secret() }, 'encryption.key is not an option'],
    ['not an object', [secret()], 'encryption must be { keys: [...], fingerprintKey }'],
  ])('refuses %s', (_, options, message) => {
    expect(encryptionOptionProblems(options).join('\n')).toContain(message);
    expect(() => Keyring.from(options as never)).toThrow(message);
  });

  it('refuses the same key listed twice, by its id', () => {
    const key = secret();
    const [problem] = encryptionOptionProblems({ ...valid, keys: [key, key.toString('base64')] });
    expect(problem).toBe(`encryption.keys[1] is the same key as encryption.keys[0] (key id ${keyIdOf(key).toString('hex')})`);
  });

  it('never repeats a refused key in its message', () => {
    const short = randomBytes(16).toString('base64');
    expect(encryptionOptionProblems({ ...valid, keys: [short], fingerprintKey: short }).join('\n')).not.toContain(short);
  });
});

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { keyedFingerprint } from './encryption/keyed-fingerprint.js';
import type { FingerprintInput } from './http/http-exchange.js';
import { fingerprintRequest } from './fingerprint/request-fingerprint.js';
import {
  resolveModuleOptions,
  validateHandlerOptions,
  type IdempotencyModuleOptions,
  type IdempotencyRouteOptions,
} from './idempotency.options.js';
import { defaultStoreResponse } from './response/stored-status-policy.js';

const ROUTE = 'PaymentsController.create';

/** The message of what `fn` throws; fails the test if it does not throw an Error. */
function errorMessageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return (error as Error).message;
  }
  throw new Error('expected the options to be refused, and they were accepted');
}

/** Options as an application might write them in plain JavaScript, past the type checker. */
const moduleOptions = (options: Record<string, unknown>): IdempotencyModuleOptions => options as IdempotencyModuleOptions;
const routeOptions = (options: Record<string, unknown>): IdempotencyRouteOptions => options as IdempotencyRouteOptions;

const input: FingerprintInput = {
  method: 'POST',
  path: '/v1/payments',
  query: '',
  headers: { 'content-type': 'application/json', 'x-region': 'eu' },
  body: { amount: 1 },
  rawBody: undefined,
};

describe('resolveModuleOptions defaults', () => {
  const resolved = resolveModuleOptions({});
  const route = resolved.resolveRoute({});

  it('reads the key from the Idempotency-Key header (R1)', () => {
    expect(resolved.headerName).toBe('Idempotency-Key');
  });

  it('makes the key optional (R2)', () => {
    expect(route.required).toBe(false);
  });

  it('expects UUID keys (R3)', () => {
    expect(route.keyFormat).toBe('uuid');
  });

  it('answers a reused key with 422 (R10)', () => {
    expect(route.mismatchStatus).toBe(422);
  });

  it('waits 3000 ms for an in-flight request (R11)', () => {
    expect(route.inFlightWaitMs).toBe(3000);
  });

  it('keeps records for 24 hours (R12)', () => {
    expect(route.ttlMs).toBe(24 * 60 * 60 * 1000);
  });

  it('stores responses by the default status policy (R14)', () => {
    expect(route.storeResponse).toBe(defaultStoreResponse);
  });

  it('stores content-type, location and content-language (R15)', () => {
    expect([...route.storedHeaders].sort()).toEqual(['content-language', 'content-type', 'location']);
  });

  it('holds an in-flight claim with a 60 s lease (R20)', () => {
    expect(route.leaseMs).toBe(60_000);
  });

  it('applies only to routes marked @Idempotent() (R1)', () => {
    expect(resolved.applyToAllWrites).toBe(false);
  });

  it('fingerprints with the built-in SHA-256 over method, path, query and body (R7)', () => {
    expect(route.fingerprint(input)).toBe(fingerprintRequest(input));
  });
});

describe('resolveModuleOptions merging', () => {
  it('applies module options as every route default (R10, R11, R12)', () => {
    const route = resolveModuleOptions({ ttl: 60_000, mismatchStatus: 409, inFlightWaitMs: 0, required: true }).resolveRoute({});
    expect(route).toMatchObject({ ttlMs: 60_000, mismatchStatus: 409, inFlightWaitMs: 0, required: true });
  });

  it('lets a route option override the module option and keeps the module options it does not set (R10, R12)', () => {
    const resolved = resolveModuleOptions({ ttl: 60_000, mismatchStatus: 409, keyFormat: 'token' });
    const route = resolved.resolveRoute({ ttl: 5_000, required: true });
    expect(route).toMatchObject({ ttlMs: 5_000, required: true, mismatchStatus: 409, keyFormat: 'token' });
  });

  it('does not let an undefined route option erase the module option (R12)', () => {
    const route = resolveModuleOptions({ ttl: 60_000 }).resolveRoute({ ttl: undefined });
    expect(route.ttlMs).toBe(60_000);
  });

  it('lets a route turn off a required key set by the module (R2)', () => {
    expect(resolveModuleOptions({ required: true }).resolveRoute({ required: false }).required).toBe(false);
  });

  it('keeps one route\'s overrides away from the next route (R12)', () => {
    const resolved = resolveModuleOptions({ ttl: 60_000 });
    expect(resolved.resolveRoute({ ttl: 1_000 }).ttlMs).toBe(1_000);
    expect(resolved.resolveRoute({}).ttlMs).toBe(60_000);
  });

  it('stores the default headers plus those the module and the route name, lower-cased (R15)', () => {
    const route = resolveModuleOptions({ storedHeaders: ['X-Request-Id'] }).resolveRoute({ storedHeaders: ['ETag'] });
    expect([...route.storedHeaders].sort()).toEqual(['content-language', 'content-type', 'etag', 'location', 'x-request-id']);
  });

  it('uses a custom key format function from the route (R3)', () => {
    const format = (key: string): boolean => key.startsWith('job-');
    expect(resolveModuleOptions({}).resolveRoute({ keyFormat: format }).keyFormat).toBe(format);
  });

  it('uses a custom store predicate (R14)', () => {
    const storeEverything = (): boolean => true;
    expect(resolveModuleOptions({ storeResponse: storeEverything }).resolveRoute({}).storeResponse).toBe(storeEverything);
  });

  it('adds the fingerprint headers named by the module or the route to the fingerprint (R7)', () => {
    const fromModule = resolveModuleOptions({ fingerprintHeaders: ['X-Region'] }).resolveRoute({});
    const fromRoute = resolveModuleOptions({}).resolveRoute({ fingerprintHeaders: ['x-region'] });
    const expected = fingerprintRequest(input, ['x-region']);
    expect(expected).not.toBe(fingerprintRequest(input));
    expect(fromModule.fingerprint(input)).toBe(expected);
    expect(fromRoute.fingerprint(input)).toBe(expected);
  });

  it('replaces the built-in fingerprint with a custom fingerprint function (R7)', () => {
    const route = resolveModuleOptions({ fingerprint: (request) => `custom:${request.path}` }).resolveRoute({});
    expect(route.fingerprint(input)).toBe('custom:/v1/payments');
  });

  it('keeps the module-wide settings (R1, R21)', () => {
    const resolved = resolveModuleOptions({ headerName: 'X-Idempotency-Key', applyToAllWrites: true, purgeBatchSize: 50 });
    expect(resolved).toMatchObject({ headerName: 'X-Idempotency-Key', applyToAllWrites: true, purgeBatchSize: 50 });
  });
});

describe('resolveModuleOptions refuses invalid options at start-up, naming the option', () => {
  it.each([
    ['ttl', { ttl: -1 }],
    ['ttl', { ttl: 0 }],
    ['ttl', { ttl: 1.5 }],
    ['ttl', { ttl: '24h' }],
    ['mismatchStatus', { mismatchStatus: 418 }],
    ['keyFormat', { keyFormat: 'nope' }],
    ['inFlightWaitMs', { inFlightWaitMs: -1 }],
    ['lockTimeoutMs', { lockTimeoutMs: 0 }],
    ['required', { required: 'yes' }],
    ['storeResponse', { storeResponse: [200] }],
    ['headerName', { headerName: 'Idempotency Key' }],
    ['headerName', { headerName: '' }],
    ['fingerprintHeaders', { fingerprintHeaders: ['x region'] }],
    ['storedHeaders', { storedHeaders: 'content-type' }],
    ['account', { account: 'user.accountId' }],
    ['purgeBatchSize', { purgeBatchSize: 0 }],
  ])('refuses a bad %s (%j) (R3, R10-R15)', (name, options) => {
    const message = errorMessageOf(() => resolveModuleOptions(moduleOptions(options)));
    expect(message).toContain(name);
    expect(message).toContain('nestjs-idempotency');
  });

  it('refuses a misspelt option such as ttlMs, naming it, rather than silently keeping the default ttl (R12)', () => {
    const message = errorMessageOf(() => resolveModuleOptions(moduleOptions({ ttlMs: 1000 })));
    expect(message).toContain('"ttlMs"');
  });

  it('names every bad option at once (R10, R12)', () => {
    const message = errorMessageOf(() => resolveModuleOptions(moduleOptions({ ttl: -1, mismatchStatus: 418 })));
    expect(message).toContain('ttl');
    expect(message).toContain('mismatchStatus');
  });

  it.each(['Set-Cookie', 'authorization', 'Content-Length', 'date', 'transfer-encoding', 'connection'])(
    'refuses to store the %s header, naming it (R15)',
    (header) => {
      const message = errorMessageOf(() => resolveModuleOptions({ storedHeaders: ['x-request-id', header] }));
      expect(message).toContain(`"${header}"`);
    },
  );

  it('accepts every valid option together (R1-R3, R7, R10-R15, R20, R21)', () => {
    expect(() =>
      resolveModuleOptions({
        headerName: 'X-Idempotency-Key',
        required: true,
        ttl: 60_000,
        keyFormat: 'token',
        mismatchStatus: 409,
        fingerprintHeaders: ['x-region'],
        storedHeaders: ['x-request-id'],
        inFlightWaitMs: 0,
        lockTimeoutMs: 1_000,
        storeResponse: () => true,
        account: () => 'acme',
        fingerprint: () => 'f',
        applyToAllWrites: true,
        purgeIntervalMs: 60_000,
        purgeBatchSize: 100,
      }),
    ).not.toThrow();
  });
});

describe('resolveModuleOptions with encryption (R26)', () => {
  const encryption = { keys: [randomBytes(32).toString('base64'), randomBytes(32)], fingerprintKey: randomBytes(32) };

  it('is off by default: no keyring, and the plain SHA-256 fingerprint (R7, R26)', () => {
    expect(resolveModuleOptions({}).encryption).toBeUndefined();
  });

  it('decodes the keys, the first sealing (R26)', () => {
    const resolved = resolveModuleOptions({ encryption });
    expect(resolved.encryption?.keyIds).toHaveLength(2);
    expect(resolved.encryption?.sealing.secret.equals(Buffer.from(encryption.keys[0] as string, 'base64'))).toBe(true);
  });

  it('keys the default fingerprint with the MAC key derived from fingerprintKey, headers included (R7, R26)', () => {
    const resolved = resolveModuleOptions({ encryption, fingerprintHeaders: ['X-Region'] });
    const fingerprint = resolved.resolveRoute({}).fingerprint(input);
    expect(fingerprint).not.toBe(fingerprintRequest(input, ['x-region']));
    expect(fingerprint).toBe(keyedFingerprint(resolved.encryption!.fingerprintMacKey, ['x-region'])(input));
  });

  it('keeps fingerprints when the encryption keys rotate, since fingerprintKey does not (R26)', () => {
    const before = resolveModuleOptions({ encryption: { ...encryption, keys: [encryption.keys[1]] } });
    const rotated = resolveModuleOptions({ encryption: { ...encryption, keys: [randomBytes(32), encryption.keys[1]] } });
    expect(rotated.resolveRoute({}).fingerprint(input)).toBe(before.resolveRoute({}).fingerprint(input));
  });

  it('lets a custom fingerprint function replace the keyed one (R7, R26)', () => {
    const route = resolveModuleOptions({ encryption, fingerprint: (request) => `custom:${request.path}` }).resolveRoute({});
    expect(route.fingerprint(input)).toBe('custom:/v1/payments');
  });

  it.each([
    ['an empty key list', { ...encryption, keys: [] }, 'encryption.keys must list at least one key'],
    ['a key of the wrong length', { ...encryption, keys: [randomBytes(24)] }, 'encryption.keys[0] is 24 bytes; it must be 32'],
    ['a missing fingerprintKey', { keys: encryption.keys }, 'encryption.fingerprintKey is missing'],
  ])('refuses %s at start-up, naming the option (R26)', (_, options, expected) => {
    const message = errorMessageOf(() => resolveModuleOptions(moduleOptions({ encryption: options })));
    expect(message).toContain('nestjs-idempotency: invalid IdempotencyModule options');
    expect(message).toContain('"encryption"');
    expect(message).toContain(expected);
  });
});

describe('validateHandlerOptions', () => {
  it('accepts valid route options (R2, R3, R10, R12, R15)', () => {
    expect(() => validateHandlerOptions({}, ROUTE)).not.toThrow();
    expect(() =>
      validateHandlerOptions(
        { required: true, ttl: 1_000, keyFormat: (key) => key.length > 3, mismatchStatus: 422, storedHeaders: ['etag'] },
        ROUTE,
      ),
    ).not.toThrow();
  });

  it.each([
    ['ttl', { ttl: -1 }],
    ['mismatchStatus', { mismatchStatus: 418 }],
    ['keyFormat', { keyFormat: 'nope' }],
    ['inFlightWaitMs', { inFlightWaitMs: 'soon' }],
    ['fingerprintHeaders', { fingerprintHeaders: ['bad header'] }],
  ])('refuses a bad %s (%j), naming the option and the route (R3, R10-R15)', (name, options) => {
    const message = errorMessageOf(() => validateHandlerOptions(routeOptions(options), ROUTE));
    expect(message).toContain(name);
    expect(message).toContain(ROUTE);
  });

  it('accepts where a GraphQL mutation or a message handler finds its key, and its message options (R23)', () => {
    for (const key of [{ header: 'x-event-id' }, { argument: 'idempotencyKey' }, { payload: 'meta.eventId' }, (payload: unknown) => String(payload)]) {
      expect(() => validateHandlerOptions({ key, accountFromPayload: () => 'acme', manualAck: true }, ROUTE)).not.toThrow();
    }
  });

  it.each([
    ['key', { key: 'eventId' }],
    ['key', { key: { payload: '' } }],
    ['key', { key: { payload: 'a', header: 'b' } }],
    ['accountFromPayload', { accountFromPayload: 'tenantId' }],
    ['manualAck', { manualAck: 'yes' }],
  ])('refuses a bad %s (%j) at start-up, naming it and the handler (R23)', (name, options) => {
    const message = errorMessageOf(() => validateHandlerOptions(routeOptions(options), ROUTE));
    expect(message).toContain(`"${name}"`);
    expect(message).toContain(ROUTE);
  });

  it('refuses handler-only options at module level (R23)', () => {
    const message = errorMessageOf(() => resolveModuleOptions(moduleOptions({ key: { payload: 'eventId' } })));
    expect(message).toContain('"key"');
  });

  it('refuses a misspelt option such as requried, naming it and the route (R2)', () => {
    const message = errorMessageOf(() => validateHandlerOptions(routeOptions({ requried: true }), ROUTE));
    expect(message).toContain('"requried"');
    expect(message).toContain(ROUTE);
  });

  it('refuses the module-only encryption option on a route, naming it (R26)', () => {
    const message = errorMessageOf(() => validateHandlerOptions(routeOptions({ encryption: {} }), ROUTE));
    expect(message).toContain('"encryption"');
  });

  it('refuses the module-only headerName on a route, naming it (R1)', () => {
    const message = errorMessageOf(() => validateHandlerOptions(routeOptions({ headerName: 'X-Key' }), ROUTE));
    expect(message).toContain('"headerName"');
  });

  it.each(['Set-Cookie', 'authorization', 'content-length', 'date', 'transfer-encoding', 'connection'])(
    'refuses to store the %s header on a route, naming it and the route (R15)',
    (header) => {
      const message = errorMessageOf(() => validateHandlerOptions({ storedHeaders: [header] }, ROUTE));
      expect(message).toContain(`"${header}"`);
      expect(message).toContain(ROUTE);
    },
  );
});

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { fingerprintRequest } from '../fingerprint/request-fingerprint.js';
import type { FingerprintInput } from '../http/http-exchange.js';
import { keyedFingerprint } from './keyed-fingerprint.js';

function request(overrides: Partial<FingerprintInput> = {}): FingerprintInput {
  return {
    method: 'POST',
    path: '/v1/payments',
    query: '',
    headers: { 'content-type': 'application/json', 'x-region': 'eu' },
    body: { amount: 4200, currency: 'EUR', customerId: 'cus_1' },
    rawBody: undefined,
    ...overrides,
  };
}

describe('keyedFingerprint (R7, R26)', () => {
  const macKey = randomBytes(32);
  const keyed = keyedFingerprint(macKey);

  it('is 64 lower-case hex characters, like the SHA-256 fingerprint it replaces (R26)', () => {
    expect(keyed(request())).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is not the plain SHA-256 fingerprint, so the table cannot confirm a guessed body (R26)', () => {
    expect(keyed(request())).not.toBe(fingerprintRequest(request()));
  });

  it('differs under another key, and is stable under the same one (R26)', () => {
    expect(keyedFingerprint(randomBytes(32))(request())).not.toBe(keyed(request()));
    expect(keyedFingerprint(Buffer.from(macKey))(request())).toBe(keyed(request()));
  });

  it('keeps the R7 rules: re-serialised JSON matches, another body does not (R7, R26)', () => {
    const reordered = request({ body: { customerId: 'cus_1', currency: 'EUR', amount: 4200 } });
    expect(keyed(reordered)).toBe(keyed(request()));
    expect(keyed(request({ body: { amount: 4201, currency: 'EUR', customerId: 'cus_1' } }))).not.toBe(keyed(request()));
  });

  it('counts the extra fingerprint headers it is given (R7, R26)', () => {
    const withRegion = keyedFingerprint(macKey, ['X-Region']);
    expect(withRegion(request())).not.toBe(keyed(request()));
    expect(withRegion(request({ headers: { 'content-type': 'application/json', 'x-region': 'us' } }))).not.toBe(
      withRegion(request()),
    );
  });

  it('compares numbers exactly as written: 2^53+1 is not 2^53, 1e3 is 1000, -1e400 is not null (R7, R26)', () => {
    const json = (text: string) => request({ body: JSON.parse(text) as unknown, rawBody: Buffer.from(text) });
    expect(keyed(json('{"id":9007199254740993}'))).not.toBe(keyed(json('{"id":9007199254740992}')));
    expect(keyed(json('{"amount":1e3}'))).toBe(keyed(json('{"amount":1000.0}')));
    expect(keyed(json('{"ms":-1e400}'))).not.toBe(keyed(json('{"ms":null}')));
    expect(keyed(request({ body: { ms: -Infinity } }))).not.toBe(keyed(request({ body: { ms: null } })));
  });

  it('counts every body by its bytes and the route by its decoded parameters and parsed query (R7, R26)', () => {
    const text = (bytes: string) => request({ headers: { 'content-type': 'text/plain' }, body: undefined, rawBody: Buffer.from(bytes) });
    expect(keyed(text('reason=A'))).not.toBe(keyed(text('reason=B')));
    const route = (path: string, id: string, queryParams: Record<string, unknown>) =>
      request({ method: 'DELETE', path, route: '/v1/exports/:id', params: { id }, queryParams, body: undefined });
    expect(keyed(route('/v1/exports/exp%5F1', 'exp_1', { b: '2', a: '1' }))).toBe(keyed(route('/v1/exports/exp_1', 'exp_1', { a: '1', b: '2' })));
    expect(keyed(route('/v1/exports/exp_1', 'exp_1', { a: ['1', '2'] }))).not.toBe(keyed(route('/v1/exports/exp_1', 'exp_1', { a: ['2', '1'] })));
  });
});

import { describe, expect, it } from '@jest/globals';
import { assertStorableHeaders, DEFAULT_STORED_HEADERS, pickStoredHeaders } from './stored-headers.js';

const FORBIDDEN = ['set-cookie', 'authorization', 'content-length', 'date', 'transfer-encoding', 'connection', 'content-encoding', 'vary'];

describe('pickStoredHeaders', () => {
  it('stores content-type, location and content-language by default (R15)', () => {
    expect([...DEFAULT_STORED_HEADERS].sort()).toEqual(['content-language', 'content-type', 'location']);
  });

  it('keeps only the allow-listed headers of a sent response (R15)', () => {
    const picked = pickStoredHeaders(
      {
        'content-type': 'application/json; charset=utf-8',
        location: '/v1/payments/pay_1',
        'x-powered-by': 'Express',
        etag: 'W/"1a"',
        'x-request-id': 'req_1',
      },
      new Set([...DEFAULT_STORED_HEADERS, 'x-request-id']),
    );
    expect(picked).toEqual({
      'content-type': 'application/json; charset=utf-8',
      location: '/v1/payments/pay_1',
      'x-request-id': 'req_1',
    });
  });

  it('matches names case-insensitively and stores them lower-case (R15)', () => {
    const picked = pickStoredHeaders(
      { 'Content-Type': 'text/plain', LOCATION: '/x', 'Content-Language': 'de' },
      new Set(DEFAULT_STORED_HEADERS),
    );
    expect(picked).toEqual({ 'content-type': 'text/plain', location: '/x', 'content-language': 'de' });
  });

  it('stores values as strings and keeps multi-value headers as lists (R15)', () => {
    const picked = pickStoredHeaders({ 'x-count': 3, link: ['<a>; rel=next', '<b>; rel=prev'] }, new Set(['x-count', 'link']));
    expect(picked).toEqual({ 'x-count': '3', link: ['<a>; rel=next', '<b>; rel=prev'] });
  });

  it('skips an allow-listed header that has no value (R15)', () => {
    expect(pickStoredHeaders({ location: undefined, 'content-type': 'text/plain' }, new Set(DEFAULT_STORED_HEADERS))).toEqual({
      'content-type': 'text/plain',
    });
  });

  it('never keeps set-cookie, credentials or server-written headers, even if the allow-list names them (R15)', () => {
    const headers = {
      'Set-Cookie': ['session=abc; HttpOnly'],
      authorization: 'Bearer secret',
      'www-authenticate': 'Basic',
      'content-length': '42',
      date: 'Mon, 01 Jan 2024 00:00:00 GMT',
      'transfer-encoding': 'chunked',
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'idempotency-replayed': 'true',
      'content-encoding': 'gzip',
      vary: 'Accept-Encoding',
      'content-type': 'application/json',
    };
    const allowEverything = new Set(Object.keys(headers).map((name) => name.toLowerCase()));
    expect(pickStoredHeaders(headers, allowEverything)).toEqual({ 'content-type': 'application/json' });
  });
});

describe('assertStorableHeaders', () => {
  it.each(FORBIDDEN)('refuses to store %s, naming the header and where it was configured (R15)', (name) => {
    let message = 'did not throw';
    try {
      assertStorableHeaders(['x-request-id', name], 'PaymentsController.create');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`"${name}"`);
    expect(message).toContain('PaymentsController.create');
  });

  it('names the header as the application spelt it, whatever its case (R15)', () => {
    expect(() => assertStorableHeaders(['Set-Cookie'], 'IdempotencyModule options')).toThrow(/"Set-Cookie"/);
    expect(() => assertStorableHeaders(['AUTHORIZATION'], 'IdempotencyModule options')).toThrow(/"AUTHORIZATION"/);
  });

  it('accepts ordinary response headers (R15)', () => {
    expect(() => assertStorableHeaders(['x-request-id', 'ETag', 'Cache-Control', ...DEFAULT_STORED_HEADERS], 'route')).not.toThrow();
    expect(() => assertStorableHeaders([], 'route')).not.toThrow();
  });
});

import { describe, expect, it } from '@jest/globals';
import type { FingerprintInput } from '../http/http-exchange.js';
import { fingerprintRequest } from './request-fingerprint.js';

const JSON_HEADERS = { 'content-type': 'application/json' };

function request(overrides: Partial<FingerprintInput> = {}): FingerprintInput {
  return {
    method: 'POST',
    path: '/v1/payments',
    query: '',
    headers: JSON_HEADERS,
    body: { amount: 4200, currency: 'EUR', customerId: 'cus_1' },
    rawBody: undefined,
    ...overrides,
  };
}

function rawRequest(contentType: string, bytes: Buffer | undefined, body: unknown = undefined): FingerprintInput {
  return request({ headers: { 'content-type': contentType }, body, rawBody: bytes });
}

describe('fingerprintRequest', () => {
  it('is 64 lower-case hex characters, a SHA-256 digest (R7)', () => {
    expect(fingerprintRequest(request())).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprintRequest(rawRequest('application/octet-stream', Buffer.from([0, 1, 2])))).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprintRequest(request({ body: undefined, headers: {} }))).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is the same for the same request computed twice (R7)', () => {
    expect(fingerprintRequest(request())).toBe(fingerprintRequest(request()));
  });

  it('is the same when a client re-serialises the same JSON data with other key order and whitespace (R7)', () => {
    const firstText = '{"amount":4200,"currency":"EUR","meta":{"a":1,"b":[1,2]}}';
    const retryText = '{\n  "meta": { "b": [1, 2], "a": 1 },\n  "currency": "EUR",\n  "amount": 4200\n}';
    const first = request({ body: JSON.parse(firstText), rawBody: Buffer.from(firstText) });
    const retry = request({ body: JSON.parse(retryText), rawBody: Buffer.from(retryText) });
    expect(fingerprintRequest(retry)).toBe(fingerprintRequest(first));
  });

  it('canonicalises a JSON body sent with a +json media type and parameters (R7)', () => {
    const headers = { 'content-type': 'application/merge-patch+json; charset=utf-8' };
    const first = request({ method: 'PATCH', headers, body: { b: 1, a: 2 }, rawBody: Buffer.from('{"b":1,"a":2}') });
    const retry = request({ method: 'PATCH', headers, body: { a: 2, b: 1 }, rawBody: Buffer.from('{ "a": 2, "b": 1 }') });
    expect(fingerprintRequest(retry)).toBe(fingerprintRequest(first));
  });

  it('differs when the body differs (R7)', () => {
    expect(fingerprintRequest(request({ body: { amount: 4201, currency: 'EUR', customerId: 'cus_1' } }))).not.toBe(
      fingerprintRequest(request()),
    );
  });

  it('differs when the order of a JSON array differs (R7)', () => {
    expect(fingerprintRequest(request({ body: { items: [1, 2] } }))).not.toBe(
      fingerprintRequest(request({ body: { items: [2, 1] } })),
    );
  });

  it('differs when a JSON value changes type, e.g. number 1 versus string "1" (R7)', () => {
    expect(fingerprintRequest(request({ body: { amount: 1 } }))).not.toBe(fingerprintRequest(request({ body: { amount: '1' } })));
  });

  it('differs between an empty JSON object and no body (R7)', () => {
    expect(fingerprintRequest(request({ body: {} }))).not.toBe(fingerprintRequest(request({ body: undefined })));
  });

  it('differs when the method differs (R7)', () => {
    expect(fingerprintRequest(request({ method: 'PUT' }))).not.toBe(fingerprintRequest(request()));
  });

  it('differs when a route parameter value in the path differs (R7)', () => {
    expect(fingerprintRequest(request({ method: 'DELETE', path: '/v1/exports/exp_1', body: undefined }))).not.toBe(
      fingerprintRequest(request({ method: 'DELETE', path: '/v1/exports/exp_2', body: undefined })),
    );
  });

  it('differs when the query string differs, including none versus some (R7)', () => {
    const none = fingerprintRequest(request());
    const one = fingerprintRequest(request({ query: 'expand=customer' }));
    const other = fingerprintRequest(request({ query: 'expand=invoice' }));
    expect(new Set([none, one, other]).size).toBe(3);
  });

  it('cannot confuse the path/query boundary: path "/a" with query "b" differs from path "/ab" (R7)', () => {
    expect(fingerprintRequest(request({ path: '/a', query: 'b' }))).not.toBe(fingerprintRequest(request({ path: '/ab', query: '' })));
    expect(fingerprintRequest(request({ path: '/a', query: 'b' }))).not.toBe(fingerprintRequest(request({ path: '/', query: 'ab' })));
  });

  it('cannot confuse the method/path boundary (R7)', () => {
    expect(fingerprintRequest(request({ method: 'POST', path: '/x' }))).not.toBe(
      fingerprintRequest(request({ method: 'POST/', path: 'x' })),
    );
  });

  it('cannot confuse the query/body boundary for raw bodies (R7)', () => {
    const a = request({ query: 'q=1', headers: { 'content-type': 'text/plain' }, body: undefined, rawBody: Buffer.from('x') });
    const b = request({ query: 'q=', headers: { 'content-type': 'text/plain' }, body: undefined, rawBody: Buffer.from('1x') });
    expect(fingerprintRequest(a)).not.toBe(fingerprintRequest(b));
  });

  it('ignores request headers that are not named for the fingerprint (R7)', () => {
    const plain = request();
    const withOthers = request({
      headers: { ...JSON_HEADERS, 'user-agent': 'retrying-client/2', 'x-request-id': 'req_2', 'idempotency-key': 'k' },
    });
    expect(fingerprintRequest(withOthers)).toBe(fingerprintRequest(plain));
  });

  it('counts the headers named for the fingerprint (R7)', () => {
    const eu = request({ headers: { ...JSON_HEADERS, 'x-region': 'eu' } });
    const us = request({ headers: { ...JSON_HEADERS, 'x-region': 'us' } });
    expect(fingerprintRequest(eu, ['x-region'])).not.toBe(fingerprintRequest(us, ['x-region']));
    expect(fingerprintRequest(eu)).toBe(fingerprintRequest(us));
  });

  it('matches fingerprint header names case-insensitively (R7)', () => {
    const eu = request({ headers: { ...JSON_HEADERS, 'x-region': 'eu' } });
    const us = request({ headers: { ...JSON_HEADERS, 'x-region': 'us' } });
    expect(fingerprintRequest(eu, ['X-Region'])).toBe(fingerprintRequest(eu, ['x-region']));
    expect(fingerprintRequest(eu, ['X-REGION'])).not.toBe(fingerprintRequest(us, ['X-REGION']));
  });

  it('does not depend on the order or repetition of the named fingerprint headers (R7)', () => {
    const input = request({ headers: { ...JSON_HEADERS, 'x-region': 'eu', 'x-tenant': 't1' } });
    expect(fingerprintRequest(input, ['x-tenant', 'x-region'])).toBe(fingerprintRequest(input, ['x-region', 'x-tenant']));
    expect(fingerprintRequest(input, ['x-region', 'X-Region'])).toBe(fingerprintRequest(input, ['x-region']));
  });

  it('is stable when a named fingerprint header is absent (R7)', () => {
    expect(fingerprintRequest(request(), ['x-region'])).toBe(fingerprintRequest(request(), ['x-region']));
    const present = request({ headers: { ...JSON_HEADERS, 'x-region': 'eu' } });
    expect(fingerprintRequest(present, ['x-region'])).not.toBe(fingerprintRequest(request(), ['x-region']));
  });

  it('cannot confuse which named header carries a value (R7)', () => {
    const first = request({ headers: { ...JSON_HEADERS, 'x-a': '1' } });
    const second = request({ headers: { ...JSON_HEADERS, 'x-b': '1' } });
    expect(fingerprintRequest(first, ['x-a', 'x-b'])).not.toBe(fingerprintRequest(second, ['x-a', 'x-b']));
  });

  it('hashes a non-JSON body as its raw bytes, whether it arrives as rawBody, a Buffer body or a string body (R7)', () => {
    const text = 'amount=4200&currency=EUR';
    const form = 'text/plain';
    const fromRaw = fingerprintRequest(rawRequest(form, Buffer.from(text)));
    const fromBuffer = fingerprintRequest(rawRequest(form, undefined, Buffer.from(text)));
    const fromString = fingerprintRequest(rawRequest(form, undefined, text));
    expect(fromBuffer).toBe(fromRaw);
    expect(fromString).toBe(fromRaw);
  });

  it('prefers the raw bytes to a parsed non-JSON body (R7)', () => {
    const form = 'application/x-www-form-urlencoded';
    const first = rawRequest(form, Buffer.from('a=1&b=2'), { a: '1', b: '2' });
    const reordered = rawRequest(form, Buffer.from('b=2&a=1'), { b: '2', a: '1' });
    expect(fingerprintRequest(reordered)).not.toBe(fingerprintRequest(first));
    expect(fingerprintRequest(rawRequest(form, Buffer.from('a=1&b=2'), { a: '1', b: '2' }))).toBe(fingerprintRequest(first));
  });

  it('does not canonicalise a non-JSON body: whitespace and byte order count (R7)', () => {
    const plain = 'text/plain';
    expect(fingerprintRequest(rawRequest(plain, Buffer.from('{"a":1}')))).not.toBe(
      fingerprintRequest(rawRequest(plain, Buffer.from('{ "a": 1 }'))),
    );
    expect(fingerprintRequest(rawRequest(plain, undefined, 'a b'))).not.toBe(fingerprintRequest(rawRequest(plain, undefined, 'a  b')));
  });

  it('tells binary bodies apart by a single byte (R7)', () => {
    const octets = 'application/octet-stream';
    const bytes = Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256));
    const flipped = Buffer.from(bytes);
    flipped[512] ^= 1;
    expect(fingerprintRequest(rawRequest(octets, flipped))).not.toBe(fingerprintRequest(rawRequest(octets, bytes)));
    expect(fingerprintRequest(rawRequest(octets, Buffer.from(bytes)))).toBe(fingerprintRequest(rawRequest(octets, bytes)));
  });

  it('fingerprints a JSON body nested 100000 deep without overflowing the stack (R7, any body size)', () => {
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(fingerprintRequest(request({ body: deep }))).toMatch(/^[0-9a-f]{64}$/);
  });

  describe('numbers exactly as written (R7)', () => {
    const json = (text: string, contentType = 'application/json') =>
      request({ headers: { 'content-type': contentType }, body: JSON.parse(text) as unknown, rawBody: Buffer.from(text) });

    it('tells 2^53+1 from 2^53 when the raw body is there (R7)', () => {
      expect(fingerprintRequest(json('{"datastreamId":9007199254740993}'))).not.toBe(fingerprintRequest(json('{"datastreamId":9007199254740992}')));
    });

    it('tells -1e400 from null, from the raw body and from the parsed value alike (R7)', () => {
      const nullBody = fingerprintRequest(json('{"datastreamId":5,"processingMs":null}'));
      expect(fingerprintRequest(json('{"datastreamId":5,"processingMs":-1e400}'))).not.toBe(nullBody);
      const parsedOnly = request({ body: JSON.parse('{"datastreamId":5,"processingMs":-1e400}') as unknown });
      expect(fingerprintRequest(parsedOnly)).not.toBe(fingerprintRequest(request({ body: { datastreamId: 5, processingMs: null } })));
    });

    it('matches 1e3, 1000, 1000.0 and 1E+3 (R7)', () => {
      const spellings = ['1e3', '1000', '1000.0', '1E+3'].map((number) => fingerprintRequest(json(`{"amount":${number}}`)));
      expect(new Set(spellings).size).toBe(1);
    });

    it('gives a raw JSON body the fingerprint its parsed value gives, for numbers a double holds, so raw and parsed apps agree (R7)', () => {
      const text = '{ "b": [1, 2.5, -0, 1e21, "x\u0041"], "a": {"z": null, "y": true} }';
      expect(fingerprintRequest(json(text))).toBe(fingerprintRequest(request({ body: JSON.parse(text) as unknown })));
    });

    it('hashes a JSON-typed body that is not JSON as its bytes, so it is neither refused nor merged (R7)', () => {
      const broken = (text: string) => request({ body: undefined, rawBody: Buffer.from(text) });
      expect(fingerprintRequest(broken('{"a":1,}'))).toMatch(/^[0-9a-f]{64}$/);
      expect(fingerprintRequest(broken('{"a":1,}'))).not.toBe(fingerprintRequest(broken('{ "a":1,}')));
    });

    it('hashes a JSON body declared in a charset other than UTF-8 as its bytes (R7)', () => {
      const latin1 = (text: string) => json(text, 'application/json; charset=latin1');
      expect(fingerprintRequest(latin1('{"a":1}'))).not.toBe(fingerprintRequest(latin1('{ "a": 1 }')));
      expect(fingerprintRequest(json('{"a":1}', 'application/json; charset=UTF-8'))).toBe(fingerprintRequest(json('{ "a": 1 }')));
    });
  });

  describe('route, path parameters and query parameters (R7)', () => {
    const routed = (overrides: Partial<FingerprintInput>) =>
      request({ method: 'DELETE', route: '/v1/exports/:id', params: { id: 'exp_1' }, queryParams: {}, body: undefined, headers: {}, ...overrides });

    it('counts the route pattern and decoded parameters, not the path as spelled (R7)', () => {
      expect(fingerprintRequest(routed({ path: '/v1/exports/exp%5F1' }))).toBe(fingerprintRequest(routed({ path: '/v1/exports/exp_1' })));
      expect(fingerprintRequest(routed({ params: { id: 'exp_2' } }))).not.toBe(fingerprintRequest(routed({})));
      expect(fingerprintRequest(routed({ route: '/v1/imports/:id' }))).not.toBe(fingerprintRequest(routed({})));
    });

    it('orders query parameters by name but keeps the order of one name\'s values (R7)', () => {
      expect(fingerprintRequest(routed({ query: 'b=2&a=1', queryParams: { b: '2', a: '1' } }))).toBe(
        fingerprintRequest(routed({ query: 'a=1&b=2', queryParams: { a: '1', b: '2' } })),
      );
      expect(fingerprintRequest(routed({ queryParams: { a: ['2', '1'] } }))).not.toBe(fingerprintRequest(routed({ queryParams: { a: ['1', '2'] } })));
      expect(fingerprintRequest(routed({ queryParams: { a: '1' } }))).not.toBe(fingerprintRequest(routed({ queryParams: { a: ['1'] } })));
    });

    it('parses the query string itself when no parsed parameters are given, decoding and ordering them (R7)', () => {
      const plain = (query: string) => request({ query });
      expect(fingerprintRequest(plain('x=%41&b=2&a=1'))).toBe(fingerprintRequest(plain('a=1&b=2&x=A')));
      expect(fingerprintRequest(plain('a=1&a=2'))).not.toBe(fingerprintRequest(plain('a=2&a=1')));
      expect(fingerprintRequest(plain('a=1'))).toBe(fingerprintRequest(request({ query: 'a=1', queryParams: { a: '1' } })));
    });

    it('falls back to the path as given when there is no route, as GraphQL fields and message patterns are (R7)', () => {
      expect(fingerprintRequest(request({ path: 'createPayment' }))).not.toBe(fingerprintRequest(request({ path: 'capturePayment' })));
      expect(fingerprintRequest(request({ path: '/v1/payments' }))).toBe(fingerprintRequest(request({ route: '/v1/payments', params: {}, queryParams: {} })));
    });

    it('cannot confuse the route/parameters boundary, whatever characters the route holds (R7)', () => {
      expect(fingerprintRequest(routed({ route: '/a\u0000{}', params: {} }))).not.toBe(fingerprintRequest(routed({ route: '/a', params: {} })));
    });
  });
});

import { createHmac, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createPaymentsApp, type HttpPlatform } from '../src/bootstrap.js';
import { parseApiKeys } from '../src/config/app-config.js';
import { PLATFORM_MATRIX, startPaymentsApp, TEST_WEBHOOK_SECRET, type RunningPaymentsApp } from './support/payments-app.js';
import { countOf, createTestDatabase, queryRows, type TestDatabase } from './support/test-database.js';
import { chosenOr } from './support/chosen-databases.js';

/** zlib's zstd compressor where this Node has one (22.15+, 23.8+), else undefined (Node 20). */
const zstd = (zlib as unknown as { zstdCompressSync?: (input: string) => Buffer }).zstdCompressSync;

const ACME = { 'X-Api-Key': 'key-acme' };
const JSON_TYPE = { 'Content-Type': 'application/json' };

/** How deep the example API lets a body nest (the body itself is level 1). */
const MAX_DEPTH = 32;

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details?: ReadonlyArray<{ field: string; problems: string[] }> };
}

/** `{"a":{"a":...1...}}` or `[[...1...]]`, `levels` containers deep, as JSON text. */
function nested(levels: number, kind: 'object' | 'array'): string {
  const [open, close] = kind === 'object' ? ['{"a":', '}'] : ['[', ']'];
  return `${open.repeat(levels)}1${close.repeat(levels)}`;
}

function signatureOf(rawBody: string): string {
  return `sha256=${createHmac('sha256', TEST_WEBHOOK_SECRET).update(rawBody).digest('hex')}`;
}

/** The answer is an error in the API's one shape (R17), with this status and code and nothing else. */
function expectApiError(response: request.Response, status: number, code: string): ErrorBody {
  expect([response.status, response.headers['content-type']]).toEqual([status, expect.stringMatching(/^application\/json(;|$)/)]);
  const body = JSON.parse(response.text) as ErrorBody;
  expect(body).toStrictEqual({ error: { code, message: expect.any(String), ...(body.error.details === undefined ? {} : { details: expect.any(Array) }) } });
  expect(body.error.message.length).toBeGreaterThan(0);
  return body;
}

describe.each(PLATFORM_MATRIX)('bad input on %s with %s', (database, platform) => {
  let running: RunningPaymentsApp;

  beforeAll(async () => {
    running = await startPaymentsApp(database, platform, 'bad_input');
  });

  afterAll(async () => {
    await running?.close();
  });

  const rows = (table: 'payments' | 'export_jobs' | 'webhook_events') => countOf(running.dataSource, `SELECT COUNT(*) AS n FROM ${table}`);

  /** POSTs `body` exactly as written (JSON text), so numbers and escapes reach the server untouched. */
  function postRaw(path: string, body: string, headers: Record<string, string> = {}) {
    return request(running.server).post(path).set(ACME).set(JSON_TYPE).set(headers).send(body);
  }

  const pay = (body: string) => postRaw('/v1/payments', body, { 'Idempotency-Key': randomUUID() });

  /** Posts these bytes as an export in `encoding`: sent as they are (superagent would serialise a Buffer sent as application/json into JSON). */
  function postEncoded(encoding: string, bytes: Buffer) {
    return request(running.server)
      .post('/v1/exports')
      .set(ACME)
      .set(JSON_TYPE)
      .set('Content-Encoding', encoding)
      .serialize((sent: Buffer) => sent as unknown as string)
      .send(bytes);
  }

  describe('nesting depth', () => {
    it.each([
      ['/v1/payments', 'an object member', (deep: string) => `{"amount":1,"currency":"EUR","customerId":"cus_deep","x":${deep}}`, 'object'],
      ['/v1/payments', 'an array member', (deep: string) => `{"amount":1,"currency":"EUR","customerId":"cus_deep","x":${deep}}`, 'array'],
      ['/v1/payments', 'the body itself', (deep: string) => deep, 'array'],
      ['/v1/exports', 'an object member', (deep: string) => `{"datastreamId":7,"x":${deep}}`, 'object'],
      ['/v1/exports', 'an array member', (deep: string) => `{"datastreamId":7,"x":${deep}}`, 'array'],
      ['/v1/exports', 'the body itself', (deep: string) => deep, 'object'],
    ] as const)('answers POST %s with %s nested 3000 levels and more with 400 validation_failed, and stores nothing (bad input is 4xx, R17)', async (path, _where, body, kind) => {
      const table = path === '/v1/payments' ? 'payments' : 'export_jobs';
      const before = await rows(table);
      // Deeper than any stack, within the smallest body limit (Express's 100 kB).
      for (const levels of kind === 'array' ? [3000, 40_000] : [3000, 15_000]) {
        const response = await postRaw(path, body(nested(levels, kind)), { 'Idempotency-Key': randomUUID() });
        const error = expectApiError(response, 400, 'validation_failed');
        expect(error.error.details).toContainEqual({ field: expect.any(String), problems: [`nested deeper than ${MAX_DEPTH} levels`] });
      }
      expect(await rows(table)).toBe(before);
    });

    it(`accepts a webhook whose free-form data nests ${MAX_DEPTH} levels and refuses one level more with 400 validation_failed (bad input is 4xx)`, async () => {
      const before = await rows('webhook_events');
      // The body is level 1 and data level 2: data's own nesting makes up the rest.
      const deliver = (levels: number) => {
        const body = `{"id":"evt_${randomUUID().replaceAll('-', '')}","type":"payment.succeeded","data":${nested(levels - 1, 'object')}}`;
        return request(running.server).post('/v1/webhooks/provider').set(JSON_TYPE).set('X-Provider-Signature', signatureOf(body)).send(body);
      };
      expect((await deliver(MAX_DEPTH)).status).toBe(200);
      expectApiError(await deliver(MAX_DEPTH + 1), 400, 'validation_failed');
      expect(await rows('webhook_events')).toBe(before + 1);
    });
  });

  describe('numbers the columns cannot hold exactly', () => {
    it.each([
      ['1e19', '1e19'],
      ['2^63-1', '9223372036854775807'],
      ['2^63-1024 (a double that a BIGINT holds)', '9223372036854774784'],
      ['2^53+1 (rounded to 2^53 by JSON.parse)', '9007199254740993'],
      ['2^53', '9007199254740992'],
      ['1e300', '1e300'],
    ])('refuses an amount of %s with 400 validation_failed naming amount, and charges nothing (bad input is 4xx)', async (_name, amount) => {
      const before = await rows('payments');
      const response = await pay(`{"amount":${amount},"currency":"EUR","customerId":"cus_big"}`);
      const error = expectApiError(response, 400, 'validation_failed');
      expect(error.error.details?.map((detail) => detail.field)).toEqual(['amount']);
      expect(await rows('payments')).toBe(before);
    });

    it.each([
      ['1e300', '1e300'],
      ['2^63-1', '9223372036854775807'],
      ['2^53+1', '9007199254740993'],
    ])('refuses a datastreamId of %s with 400 validation_failed naming datastreamId, and queues nothing (bad input is 4xx)', async (_name, id) => {
      const before = await rows('export_jobs');
      const response = await postRaw('/v1/exports', `{"datastreamId":${id}}`);
      const error = expectApiError(response, 400, 'validation_failed');
      expect(error.error.details?.map((detail) => detail.field)).toEqual(['datastreamId']);
      expect(await rows('export_jobs')).toBe(before);
    });

    it('stores the largest safe integer, 2^53-1, exactly as amount and as datastreamId and shows it back unchanged (bad input is 4xx)', async () => {
      const created = await pay(`{"amount":9007199254740991,"currency":"EUR","customerId":"cus_max"}`).expect(201);
      expect(created.text).toContain('"amount":9007199254740991,');
      const [stored] = await queryRows<{ amount: string | number }>(running.dataSource, 'SELECT amount FROM payments WHERE id = ?', [created.body.id]);
      expect(String(stored.amount)).toBe('9007199254740991');
      const shown = await request(running.server).get(`/v1/payments/${created.body.id}`).set(ACME).expect(200);
      expect(shown.text).toBe(created.text);

      const queued = await postRaw('/v1/exports', '{"datastreamId":9007199254740991}').expect(202);
      const [job] = await queryRows<{ datastream_id: string | number }>(running.dataSource, 'SELECT datastream_id FROM export_jobs WHERE id = ?', [queued.body.id]);
      expect(String(job.datastream_id)).toBe('9007199254740991');
    });

    it('refuses a GraphQL createPayment amount beyond 32 bits with BAD_USER_INPUT and charges nothing (bad input is 4xx)', async () => {
      const before = await rows('payments');
      const response = await request(running.server)
        .post('/graphql')
        .set(ACME)
        .set('Idempotency-Key', randomUUID())
        .send({
          query: 'mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id } }',
          variables: { input: { amount: 2 ** 31, currency: 'EUR', customerId: 'cus_gql_big' } },
        });
      expect(response.status).toBe(400);
      expect(response.body.errors.map((error: { extensions: { code: string } }) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
      expect(await rows('payments')).toBe(before);
    });
  });

  describe('one error shape (R17)', () => {
    it.each([
      ['/v1/payments', '{"amount":1,'],
      ['/v1/exports', '{"datastreamId":7'],
      ['/v1/webhooks/provider', '{'],
      ['/graphql', '{"query":'],
    ])('answers malformed JSON on POST %s with 400 malformed_json, in the same words on every Node (R17)', async (path, body) => {
      const response = await postRaw(path, body, { 'Idempotency-Key': randomUUID() });
      expectApiError(response, 400, 'malformed_json');
      // V8's own message differs between Node versions: for '{"amount":1,' Node 20 says "Expected
      // double-quoted property name in JSON at position 12", Node 24 adds "(line 1 column 13)";
      // the API sends its own, so clients see one answer whatever Node serves them.
      expect((response.body as { error: { message: string } }).error.message).toBe('The request body is not valid JSON.');
    });

    it.each([
      ['GET', '/v1/nothing-here'],
      ['PUT', '/v1/payments'],
      ['POST', '/v2/payments'],
    ])('answers %s %s, a route that does not exist, with 404 not_found (R17)', async (method, path) => {
      const response = await request(running.server)[method.toLowerCase() as 'get' | 'put' | 'post'](path).set(ACME);
      expectApiError(response, 404, 'not_found');
    });

    it.each(['latin1', 'utf-16', 'iso-8859-1'])('answers a JSON body declared as charset=%s with 415 unsupported_media_type and queues nothing (R17)', async (charset) => {
      const before = await rows('export_jobs');
      const response = await request(running.server)
        .post('/v1/exports')
        .set(ACME)
        .set('Content-Type', `application/json; charset=${charset}`)
        .send('{"datastreamId":7}');
      expectApiError(response, 415, 'unsupported_media_type');
      expect(await rows('export_jobs')).toBe(before);
      // UTF-8, however it is spelled, is JSON's own encoding.
      await request(running.server).post('/v1/exports').set(ACME).set('Content-Type', 'application/json; charset=UTF-8').send('{"datastreamId":7}').expect(202);
    });

    it('answers a body larger than the limit with 413 payload_too_large (R17)', async () => {
      const body = JSON.stringify({ datastreamId: 7, padding: 'x'.repeat(1_100_000) });
      const response = await postRaw('/v1/exports', body);
      expectApiError(response, 413, 'payload_too_large');
    });

    // zstd is no longer unknown everywhere: Node's zlib decodes it from 22.15 and 23.8 (24 and 26
    // too), and both platforms' body parsers use it where it exists. LZW (`compress`) no Node decodes.
    it('answers a body in an unknown Content-Encoding with 415 and a broken gzip body with 400, in the API shape (R17)', async () => {
      const unknown = await postRaw('/v1/exports', '{"datastreamId":7}', { 'Content-Encoding': 'compress' });
      expectApiError(unknown, 415, 'unsupported_media_type');
      const broken = await postRaw('/v1/exports', 'not gzip at all', { 'Content-Encoding': 'gzip' });
      expectApiError(broken, 400, 'bad_request');
      const good = await postEncoded('gzip', zlib.gzipSync('{"datastreamId":7}'));
      expect(good.status).toBe(202);
    });

    it(`${zstd ? 'decodes' : 'refuses with 415'} a zstd body on Node ${process.versions.node}, whose zlib ${zstd ? 'has' : 'lacks'} zstd (R17)`, async () => {
      const encoded = zstd ? zstd('{"datastreamId":7}') : Buffer.from('{"datastreamId":7}');
      const response = await postEncoded('zstd', encoded);
      if (zstd) expect(response.status).toBe(202);
      else expectApiError(response, 415, 'unsupported_media_type');
    });

    it('answers a path that is not valid percent-encoding with 400 bad_request (R17)', async () => {
      const response = await request(running.server).get('/v1/payments/%FF').set(ACME);
      expectApiError(response, 400, 'bad_request');
    });

    it('answers a payment id of 5000 characters with a 4xx in the API shape: 404 on Express, 414 on Fastify, whose router limits parameters (R17)', async () => {
      const response = await request(running.server).get(`/v1/payments/pay_${'f'.repeat(5000)}`).set(ACME);
      if (platform === 'fastify') expectApiError(response, 414, 'uri_too_long');
      else expectApiError(response, 404, 'not_found');
    });

    it('answers request headers larger than the server takes with 431 in the API shape (R17)', async () => {
      const response = await request(running.server).get('/v1/payments').set(ACME).set('X-Padding', 'x'.repeat(20_000));
      expectApiError(response, 431, 'request_header_fields_too_large');
    });

    it('answers an unexpected failure with 500 internal_error and a message that tells nothing of the server (R17)', async () => {
      const response = await pay('{"amount":100,"currency":"EUR","customerId":"cus_error"}');
      const body = expectApiError(response, 500, 'internal_error');
      expect(body.error.details).toBeUndefined();
      expect(response.text).not.toMatch(/processor|Error|at |\.ts|\.js/);
    });

    it("keeps the API's own errors byte for byte: 401 unauthorized, 401 invalid_signature, a 402 decline and its replay (R17, R9)", async () => {
      const unauthorized = await request(running.server).get('/v1/payments').set('X-Api-Key', 'key-nobody');
      expect([unauthorized.status, unauthorized.text]).toEqual([401, '{"error":{"code":"unauthorized","message":"A valid X-Api-Key header is required."}}']);
      const unsigned = await request(running.server).post('/v1/webhooks/provider').set(JSON_TYPE).send('{"id":"evt_1","type":"t","data":{}}');
      expect([unsigned.status, unsigned.text]).toEqual([401, '{"error":{"code":"invalid_signature","message":"A valid x-provider-signature header is required."}}']);
      const key = randomUUID();
      const declined = '{"amount":100,"currency":"EUR","customerId":"cus_declined"}';
      const first = await postRaw('/v1/payments', declined, { 'Idempotency-Key': key });
      const replay = await postRaw('/v1/payments', declined, { 'Idempotency-Key': key });
      expect([first.status, first.text]).toEqual([402, '{"error":{"code":"card_declined","message":"The card was declined."}}']);
      expect([replay.status, replay.text, replay.headers['content-type']]).toEqual([402, first.text, first.headers['content-type']]);
      expect([first.headers['idempotency-replayed'], replay.headers['idempotency-replayed']]).toEqual([undefined, 'true']);
    });

    it("keeps the idempotency library's refusals as the library renders them (R17)", async () => {
      const missing = await postRaw('/v1/payments', '{"amount":1,"currency":"EUR","customerId":"cus_ok"}');
      expect([missing.status, missing.headers['content-type'], missing.text]).toEqual([
        400,
        'application/json; charset=utf-8',
        '{"error":{"code":"idempotency_key_missing","message":"This endpoint requires an Idempotency-Key header."}}',
      ]);
      const key = randomUUID();
      await postRaw('/v1/exports', '{"datastreamId":1}', { 'Idempotency-Key': key }).expect(202);
      const reuse = await postRaw('/v1/exports', '{"datastreamId":2}', { 'Idempotency-Key': key });
      expect([reuse.status, reuse.text]).toEqual([
        422,
        '{"error":{"code":"idempotency_key_reuse","message":"This idempotency key was already used with a different request. Use a new key for a new request."}}',
      ]);
    });
  });

  describe('members a DTO does not declare', () => {
    it.each(['constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', 'isPrototypeOf', '__defineGetter__'])(
      'refuses a body with a member named %s like any unknown member: 400 validation_failed naming it, nothing stored (bad input is 4xx)',
      async (name) => {
        const before = [await rows('payments'), await rows('export_jobs')];
        for (const [path, known] of [
          ['/v1/payments', '"amount":1,"currency":"EUR","customerId":"cus_proto"'],
          ['/v1/exports', '"datastreamId":7'],
        ]) {
          const response = await postRaw(path, `{${known},"${name}":1}`, { 'Idempotency-Key': randomUUID() });
          const error = expectApiError(response, 400, 'validation_failed');
          expect(error.error.details).toEqual([{ field: name, problems: [`property ${name} should not exist`] }]);
        }
        expect([await rows('payments'), await rows('export_jobs')]).toEqual(before);
      },
    );

    it('refuses a body with a member named __proto__ with 400 and stores nothing: validation_failed on Express, malformed_json on Fastify, whose JSON parser refuses it first (bad input is 4xx)', async () => {
      const before = [await rows('payments'), await rows('export_jobs')];
      for (const [path, known] of [
        ['/v1/payments', '"amount":1,"currency":"EUR","customerId":"cus_proto"'],
        ['/v1/exports', '"datastreamId":7'],
      ]) {
        const response = await postRaw(path, `{${known},"__proto__":{"amount":2}}`, { 'Idempotency-Key': randomUUID() });
        if (platform === 'fastify') {
          expectApiError(response, 400, 'malformed_json');
        } else {
          const error = expectApiError(response, 400, 'validation_failed');
          expect(error.error.details).toEqual([{ field: '__proto__', problems: ['property __proto__ should not exist'] }]);
        }
      }
      expect([await rows('payments'), await rows('export_jobs')]).toEqual(before);
    });
  });

  describe('strings a database cannot store as sent', () => {
    it.each([
      ['a lone high surrogate', 'cus_\\ud800'],
      ['a lone low surrogate', 'cus_\\udc00x'],
      ['reversed surrogates', 'cus_\\udc00\\ud800'],
      ['U+0000', 'cus_\\u0000'],
    ])('refuses a customerId holding %s with 400 validation_failed and stores no payment (bad input is 4xx)', async (_name, customerId) => {
      const before = await rows('payments');
      const key = randomUUID();
      const body = `{"amount":100,"currency":"EUR","customerId":"${customerId}"}`;
      const response = await postRaw('/v1/payments', body, { 'Idempotency-Key': key });
      const error = expectApiError(response, 400, 'validation_failed');
      expect(error.error.details?.map((detail) => detail.field)).toEqual(['customerId']);
      expect(await rows('payments')).toBe(before);
      // Refused before anything ran: the key is free for the corrected request (R14).
      await postRaw('/v1/payments', '{"amount":100,"currency":"EUR","customerId":"cus_fixed"}', { 'Idempotency-Key': key }).expect(201);
    });

    it('accepts a customerId with characters outside the BMP and stores them as sent (bad input is 4xx)', async () => {
      const created = await pay('{"amount":100,"currency":"EUR","customerId":"cus_\\ud83d\\ude00_ü"}').expect(201);
      expect(created.body.customerId).toBe('cus_😀_ü');
      const [stored] = await queryRows<{ customer_id: string }>(running.dataSource, 'SELECT customer_id FROM payments WHERE id = ?', [created.body.id]);
      expect(stored.customer_id).toBe('cus_😀_ü');
    });

    it('refuses a lone surrogate or U+0000 anywhere in a body, in member names and free-form data too, with 400 validation_failed (bad input is 4xx)', async () => {
      const before = await rows('webhook_events');
      for (const data of ['{"note":"\\ud800"}', '{"\\udfff":1}', '{"list":["ok","\\u0000"]}']) {
        const body = `{"id":"evt_${randomUUID().replaceAll('-', '')}","type":"payment.succeeded","data":${data}}`;
        const response = await request(running.server).post('/v1/webhooks/provider').set(JSON_TYPE).set('X-Provider-Signature', signatureOf(body)).send(body);
        expectApiError(response, 400, 'validation_failed');
      }
      const typed = `{"id":"evt_${randomUUID().replaceAll('-', '')}","type":"a\\u0000b","data":{}}`;
      const response = await request(running.server).post('/v1/webhooks/provider').set(JSON_TYPE).set('X-Provider-Signature', signatureOf(typed)).send(typed);
      expectApiError(response, 400, 'validation_failed');
      expect(await rows('webhook_events')).toBe(before);
      const unknownMember = await pay('{"amount":1,"currency":"EUR","customerId":"cus_ok","\\udc00":1}');
      expectApiError(unknownMember, 400, 'validation_failed');
    });

    it('refuses a lone surrogate in a GraphQL createPayment input with validation_failed and stores no payment (bad input is 4xx)', async () => {
      const before = await rows('payments');
      const response = await request(running.server)
        .post('/graphql')
        .set(ACME)
        .set(JSON_TYPE)
        .set('Idempotency-Key', randomUUID())
        .send('{"query":"mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id customerId } }","variables":{"input":{"amount":100,"currency":"EUR","customerId":"cus_\\ud800"}}}');
      expect(response.status).toBe(200);
      expect(response.body.data).toBeNull();
      expect(response.body.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'validation_failed', status: 400 }) })]);
      expect(await rows('payments')).toBe(before);
    });

    it('answers ids holding U+0000 or a lone surrogate as ids of nothing: 404 not_found on REST, null on GraphQL (bad input is 4xx)', async () => {
      for (const path of ['/v1/payments/pay_%00', '/v1/payments/pay_%00/captures']) {
        expectApiError(await request(running.server).get(path).set(ACME), 404, 'not_found');
      }
      expectApiError(await request(running.server).delete('/v1/exports/exp_%00').set(ACME), 404, 'not_found');
      for (const id of ['pay_\u0000', 'pay_\ud800']) {
        const response = await request(running.server)
          .post('/graphql')
          .set(ACME)
          .send({ query: 'query($id: ID!) { payment(id: $id) { id } }', variables: { id } });
        expect([response.status, response.body]).toEqual([200, { data: { payment: null } }]);
      }
    });
  });
});

/**
 * The app as `npm start` runs it: NODE_ENV unset (Jest sets it to `test`, which hides stack
 * traces on its own). A short in-flight wait lets a test provoke the library's 409 quickly.
 */
describe.each([
  [chosenOr('sqlite'), 'express'],
  [chosenOr('sqlite'), 'fastify'],
] as const)('errors as npm start sends them, on %s with %s', (kind, platform: HttpPlatform) => {
  let app: INestApplication;
  let database: TestDatabase;
  const jestNodeEnv = process.env.NODE_ENV;

  beforeAll(async () => {
    delete process.env.NODE_ENV;
    database = await createTestDatabase(kind, `bad_input_start_${platform}`);
    app = await createPaymentsApp(
      {
        port: 0,
        databaseUrl: database.databaseUrl,
        sqlitePath: database.sqlitePath,
        apiKeys: parseApiKeys('key-acme:acme'),
        webhookSecret: TEST_WEBHOOK_SECRET,
        atomic: false,
        idempotency: { inFlightWaitMs: 100 },
      },
      platform,
      ['error'],
    );
    await app.init();
    if (platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
    process.env.NODE_ENV = jestNodeEnv;
  });

  const graphql = (body: object, key?: string) => {
    const call = request(app.getHttpServer()).post('/graphql').set(ACME);
    if (key) call.set('Idempotency-Key', key);
    return call.send(body);
  };
  const CREATE = 'mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id } }';

  it('sends GraphQL errors without extensions.stacktrace or server paths: a library refusal, a validation error, a schema error, an unexpected failure (R17)', async () => {
    expect(process.env.NODE_ENV).toBeUndefined();
    const answers = [
      await graphql({ query: CREATE, variables: { input: { amount: 1, currency: 'EUR', customerId: 'cus_ok' } } }),
      await graphql({ query: CREATE, variables: { input: { amount: 1, currency: 'eur', customerId: 'cus_ok' } } }, randomUUID()),
      await graphql({ query: CREATE, variables: { input: { amount: 1, currency: 'EUR', customerId: 'cus_ok', coupon: 'x' } } }, randomUUID()),
      await graphql({ query: '{ payment(id: ' }),
      await graphql({ query: CREATE, variables: { input: { amount: 1, currency: 'EUR', customerId: 'cus_error' } } }, randomUUID()),
    ];
    expect(answers.map((answer) => answer.body.errors?.[0]?.extensions?.code)).toEqual([
      'idempotency_key_missing',
      'validation_failed',
      'BAD_USER_INPUT',
      'GRAPHQL_PARSE_FAILED',
      'internal_error',
    ]);
    for (const answer of answers) {
      expect(answer.text).not.toContain('stacktrace');
      expect(answer.text).not.toContain(process.cwd());
      expect(answer.text).not.toMatch(/\bat \S+ \(/);
    }
    // An unexpected error tells nothing of what failed inside.
    expect(answers[4].body.errors[0].message).toBe('An unexpected error occurred.');
  });

  it('documents the bounds it enforces: amount and datastreamId are integers from 1 to 2^53-1 in the OpenAPI document (bad input is 4xx)', async () => {
    const document = await request(app.getHttpServer()).get('/docs-json').expect(200);
    const schemas = document.body.components.schemas as Record<string, { properties: Record<string, object> }>;
    const bounds = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER };
    expect(schemas.CreatePaymentDto.properties.amount).toMatchObject(bounds);
    expect(schemas.CreateExportDto.properties.datastreamId).toMatchObject(bounds);
  });

  it("answers a retry of a payment in flight with the library's own 409: its body, content type and Retry-After (R11, R17)", async () => {
    const key = randomUUID();
    const customerId = `cus_slow_${randomUUID().slice(0, 8)}`;
    const body = `{"amount":100,"currency":"EUR","customerId":"${customerId}","processingMs":1500}`;
    const send = () => request(app.getHttpServer()).post('/v1/payments').set(ACME).set(JSON_TYPE).set('Idempotency-Key', key).send(body);
    const first = send().then((response) => response);
    // The payment row is written before processingMs: once it shows, the first holds the key.
    const dataSource = app.get<DataSource>(getDataSourceToken());
    for (let i = 0; i < 500 && (await countOf(dataSource, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [customerId])) === 0; i++) {
      await sleep(5);
    }
    const conflict = await send();
    expect((await first).status).toBe(201);
    expect([conflict.status, conflict.headers['content-type'], conflict.headers['retry-after'], conflict.text]).toEqual([
      409,
      'application/json; charset=utf-8',
      expect.stringMatching(/^[1-9]\d*$/),
      '{"error":{"code":"idempotency_conflict","message":"A request with this idempotency key is still being processed. Retry after the delay in Retry-After."}}',
    ]);
  });
});

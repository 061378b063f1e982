import { describe, expect, it } from '@jest/globals';
import { isRetryableResponse, isRetryableStatus } from './retryable-response.js';

function json(status: number, body: unknown, contentType = 'application/json; charset=utf-8'): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': contentType } });
}

describe('isRetryableStatus', () => {
  it.each([409, 429, 502, 503, 504])('retries %i (R28, R11, R18)', (status) => {
    expect(isRetryableStatus(status)).toBe(true);
  });

  it.each([400, 401, 403, 404, 408, 410, 413, 422, 425])('never retries the client error %i (R28)', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });

  it.each([500, 501, 505, 599])('does not retry %i, which the contract does not list (R28)', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });

  it.each([200, 201, 202, 204, 301, 304])('does not retry a %i answer', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });
});

describe('isRetryableResponse', () => {
  it('retries a 409 idempotency_conflict, the first request still in flight (R11, R28)', async () => {
    expect(await isRetryableResponse(json(409, { error: { code: 'idempotency_conflict', message: 'wait' } }))).toBe(true);
  });

  it('does not retry a 409 that is a reused key, from a server with mismatchStatus 409 (R10, R17)', async () => {
    expect(await isRetryableResponse(json(409, { error: { code: 'idempotency_key_reuse', message: 'other body' } }))).toBe(false);
    const problem = { type: 'urn:problem:idempotency_key_reuse', code: 'idempotency_key_reuse', status: 409 };
    expect(await isRetryableResponse(json(409, problem, 'application/problem+json'))).toBe(false);
  });

  it('leaves the body of the response readable after looking into it', async () => {
    const response = json(409, { error: { code: 'idempotency_key_reuse', message: 'other body' } });
    await isRetryableResponse(response);
    expect(await response.json()).toEqual({ error: { code: 'idempotency_key_reuse', message: 'other body' } });
  });

  it('retries a 409 whose body is not JSON or not one of ours', async () => {
    expect(await isRetryableResponse(new Response('busy', { status: 409 }))).toBe(true);
    expect(await isRetryableResponse(json(409, 'idempotency_key_reuse'))).toBe(true);
    expect(await isRetryableResponse(new Response('{not json', { status: 409, headers: { 'content-type': 'application/json' } }))).toBe(true);
  });

  it('does not look at the body of other statuses', async () => {
    expect(await isRetryableResponse(json(503, { error: { code: 'idempotency_key_reuse' } }))).toBe(true);
    expect(await isRetryableResponse(json(422, { error: { code: 'idempotency_key_reuse' } }))).toBe(false);
  });
});

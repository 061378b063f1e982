import { describe, expect, it } from '@jest/globals';
import { idempotentFetch, type FetchFunction, type RetryEvent } from './idempotent-fetch.js';
import { IdempotentRequestError } from './idempotent-request.error.js';

const URL_ = 'http://127.0.0.1:9/v1/payments';
const fast = { baseDelayMs: 5, maxDelayMs: 20 };

/** One scripted step of the fake server: a response, a network error, or no answer until aborted. */
type Step = Response | Error | 'hang';

interface SentAttempt {
  readonly method: string;
  readonly headers: Headers;
  readonly body: string;
}

/** A fetch that plays the steps in order (the last one repeats) and records what each attempt sent. */
function scripted(...steps: Step[]): { fetch: FetchFunction; sent: SentAttempt[] } {
  const sent: SentAttempt[] = [];
  const fetch: FetchFunction = async (_input, init) => {
    const body = init.body instanceof Uint8Array ? new TextDecoder().decode(init.body) : String(init.body ?? '');
    sent.push({ method: init.method ?? 'GET', headers: new Headers(init.headers), body });
    const step = steps[Math.min(sent.length - 1, steps.length - 1)];
    if (step === 'hang') {
      return new Promise<Response>((_resolve, reject) => {
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true });
      });
    }
    if (step instanceof Error) throw step;
    return step.clone();
  };
  return { fetch, sent };
}

const networkError = () => new TypeError('fetch failed', { cause: new Error('other side closed') });
const created = (replayed = false) =>
  new Response('{"id":"pay_1"}', { status: 201, headers: replayed ? { 'Idempotency-Replayed': 'true' } : {} });
const status = (code: number, headers: Record<string, string> = {}) => new Response(`status ${code}`, { status: code, headers });

describe('idempotentFetch', () => {
  it('sends the same key and the same body bytes on every attempt, and reports the replay (R28, R9)', async () => {
    const { fetch, sent } = scripted(networkError(), status(503), created(true));
    const result = await idempotentFetch(URL_, { json: { amount: 4200, currency: 'EUR' }, fetch, ...fast });

    expect(result.attempts).toBe(3);
    expect(result.replayed).toBe(true);
    expect(result.response.status).toBe(201);
    expect(await result.response.json()).toEqual({ id: 'pay_1' });
    expect(result.idempotencyKey).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(sent.map((attempt) => attempt.headers.get('idempotency-key'))).toEqual(Array(3).fill(result.idempotencyKey));
    expect(sent.map((attempt) => attempt.body)).toEqual(Array(3).fill('{"amount":4200,"currency":"EUR"}'));
    expect(sent.map((attempt) => attempt.method)).toEqual(['POST', 'POST', 'POST']);
    expect(sent[0].headers.get('content-type')).toBe('application/json');
  });

  it('draws a new key for each call, and uses the caller’s key and header name when given (R28, R1)', async () => {
    const { fetch, sent } = scripted(created());
    const first = await idempotentFetch(URL_, { fetch });
    const second = await idempotentFetch(URL_, { fetch });
    expect(first.idempotencyKey).not.toBe(second.idempotencyKey);
    expect(first.replayed).toBe(false);

    const mine = await idempotentFetch(URL_, { fetch, idempotencyKey: 'checkout:att_42', idempotencyHeader: 'X-Request-Key' });
    expect(mine.idempotencyKey).toBe('checkout:att_42');
    expect(sent[2].headers.get('x-request-key')).toBe('checkout:att_42');
    expect(sent[2].headers.has('idempotency-key')).toBe(false);

    const fromHeaders = await idempotentFetch(URL_, { fetch, headers: { 'Idempotency-Key': 'k-in-headers' } });
    expect(fromHeaders.idempotencyKey).toBe('k-in-headers');
  });

  it.each([409, 429, 502, 503, 504])('retries a %i and answers with what follows (R28)', async (code) => {
    const { fetch, sent } = scripted(status(code), created(true));
    const result = await idempotentFetch(URL_, { fetch, ...fast });
    expect(result.attempts).toBe(2);
    expect(result.response.status).toBe(201);
    expect(sent).toHaveLength(2);
  });

  it.each([400, 401, 403, 404, 422, 500, 501])('answers a %i at once, never retrying it (R28)', async (code) => {
    const { fetch, sent } = scripted(status(code), created());
    const result = await idempotentFetch(URL_, { fetch, ...fast });
    expect(result.attempts).toBe(1);
    expect(result.response.status).toBe(code);
    expect(await result.response.text()).toBe(`status ${code}`);
    expect(sent).toHaveLength(1);
  });

  it('waits at least Retry-After before the next attempt (R11, R28)', async () => {
    const { fetch } = scripted(status(409, { 'Retry-After': '1' }), created(true));
    const retries: RetryEvent[] = [];
    const started = Date.now();
    const result = await idempotentFetch(URL_, { fetch, ...fast, onRetry: (event) => retries.push(event) });
    expect(result.replayed).toBe(true);
    expect(retries).toEqual([{ attempt: 1, delayMs: 1_000, idempotencyKey: result.idempotencyKey, status: 409 }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
  });

  it('answers the retryable response at once when its Retry-After does not fit in the budget (R28)', async () => {
    const { fetch, sent } = scripted(status(503, { 'Retry-After': '30' }), created());
    const started = Date.now();
    const result = await idempotentFetch(URL_, { fetch, ...fast, timeoutMs: 2_000 });
    expect(result.response.status).toBe(503);
    expect(result.response.headers.get('retry-after')).toBe('30');
    expect(result.attempts).toBe(1);
    expect(sent).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('answers the last retryable response, body unread, when the attempts run out (R28)', async () => {
    const { fetch, sent } = scripted(status(502));
    const result = await idempotentFetch(URL_, { fetch, ...fast, maxAttempts: 3 });
    expect(result.response.status).toBe(502);
    expect(await result.response.text()).toBe('status 502');
    expect(result.attempts).toBe(3);
    expect(sent).toHaveLength(3);
  });

  it('throws an error with the key and the attempts when no attempt got an answer (R28)', async () => {
    const { fetch } = scripted(networkError());
    const error = await idempotentFetch(URL_, { fetch, ...fast, maxAttempts: 4, idempotencyKey: 'k-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotentRequestError);
    expect(error).toMatchObject({ idempotencyKey: 'k-1', attempts: 4, reason: 'attempts', name: 'IdempotentRequestError' });
    expect((error as Error).cause).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/4 attempts.*other side closed.*k-1/);
  });

  it('gives up when the time budget runs out, however many attempts were left (R28)', async () => {
    const { fetch, sent } = scripted(networkError());
    const started = Date.now();
    const error = await idempotentFetch(URL_, { fetch, baseDelayMs: 20, maxDelayMs: 20, timeoutMs: 300, maxAttempts: Infinity }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ reason: 'time' });
    expect((error as IdempotentRequestError).attempts).toBe(sent.length);
    expect(sent.length).toBeGreaterThan(3);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('aborts an attempt that takes longer than attemptTimeoutMs and sends the next one (R28)', async () => {
    const { fetch, sent } = scripted('hang', created(true));
    const retries: RetryEvent[] = [];
    const result = await idempotentFetch(URL_, { fetch, ...fast, attemptTimeoutMs: 50, onRetry: (event) => retries.push(event) });
    expect(result.attempts).toBe(2);
    expect(result.replayed).toBe(true);
    expect(sent).toHaveLength(2);
    expect(retries[0].error).toMatchObject({ name: 'TimeoutError' });
  });

  it('ends an attempt still running when the budget runs out, as a give-up (R28)', async () => {
    const { fetch, sent } = scripted('hang');
    const started = Date.now();
    const error = await idempotentFetch(URL_, { fetch, ...fast, attemptTimeoutMs: 5_000, timeoutMs: 150 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: 'time', attempts: 1 });
    expect((error as Error).cause).toMatchObject({ name: 'TimeoutError' });
    expect(sent).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('stops everything at once when the caller aborts, during an attempt or a wait, with the caller’s reason', async () => {
    const during = scripted('hang');
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('user left')), 50);
    await expect(idempotentFetch(URL_, { fetch: during.fetch, signal: controller.signal })).rejects.toThrow('user left');
    expect(during.sent).toHaveLength(1);

    const waiting = scripted(status(503, { 'Retry-After': '5' }), created());
    const later = new AbortController();
    const started = Date.now();
    setTimeout(() => later.abort(), 50);
    await expect(idempotentFetch(URL_, { fetch: waiting.fetch, signal: later.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(waiting.sent).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1_000);

    const before = scripted(created());
    await expect(idempotentFetch(URL_, { fetch: before.fetch, signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(before.sent).toHaveLength(0);
  });

  it('fails at once, sending nothing, on what no retry could fix', async () => {
    const { fetch, sent } = scripted(created());
    // Matched by name: Node's Request throws its own realm's TypeError, not the test sandbox's.
    await expect(idempotentFetch('not a url', { fetch })).rejects.toMatchObject({ name: 'TypeError' });
    await expect(idempotentFetch(URL_, { fetch, method: 'GET', body: 'x' })).rejects.toMatchObject({ name: 'TypeError' });
    await expect(idempotentFetch(URL_, { fetch, headers: { 'X-Bad': 'a\nb' } })).rejects.toMatchObject({ name: 'TypeError' });
    await expect(idempotentFetch(URL_, { fetch, idempotencyKey: 'a', headers: { 'Idempotency-Key': 'b' } })).rejects.toThrow(/disagree/);
    await expect(idempotentFetch(URL_, { fetch, idempotencyKey: ' ' })).rejects.toThrow(/empty/);
    await expect(idempotentFetch(URL_, { fetch, maxAttempts: 0 })).rejects.toThrow(RangeError);
    await expect(idempotentFetch(URL_, { fetch, maxAttempts: Infinity, timeoutMs: Infinity })).rejects.toThrow(/both be Infinity/);
    await expect(idempotentFetch(URL_, { fetch, attemptTimeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(idempotentFetch(URL_, { fetch, baseDelayMs: -1 })).rejects.toThrow(RangeError);
    expect(sent).toHaveLength(0);
  });
});

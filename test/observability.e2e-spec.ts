import { createHash, createHmac, randomInt, randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { trace, type Context, type Span, type SpanContext, type Tracer, type TracerProvider } from '@opentelemetry/api';
import request from 'supertest';
import {
  IDEMPOTENCY_CHANNELS,
  type IdempotencyOutcome,
  type IdempotencyOutcomeMessage,
  type IdempotencyStoreCallMessage,
} from 'nestjs-idempotency';
import { eventually } from './support/app-process.js';
import { startPaymentsApp, TEST_WEBHOOK_SECRET, type RunningPaymentsApp } from './support/payments-app.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { queryRows } from './support/test-database.js';

const ACCOUNT = 'acme';
const EXPORTS = 'POST /v1/exports';

/** What the library documents the key hash to be, computed here independently. */
function keyHashOf(account: string, key: string): string {
  return createHash('sha256').update(`${account}\0${key}`).digest('hex').slice(0, 16);
}

/** The sum of the samples of `name` whose labels include `labels`, in Prometheus text; 0 when there is none yet. */
function sampleOf(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, label, value]) => [label, value]));
    if (Object.entries(labels).every(([label, value]) => found[label] === value)) sum += Number(match[3]);
  }
  return sum;
}

const requestsOf = (text: string, route: string, outcome: IdempotencyOutcome): number =>
  sampleOf(text, 'idempotency_requests_total', { route, outcome });
const waitsOf = (text: string, outcome: IdempotencyOutcome): number =>
  sampleOf(text, 'idempotency_in_flight_wait_seconds_count', { outcome });
const storeCallsOf = (text: string, operation: string, ok?: boolean): number =>
  sampleOf(text, 'idempotency_store_call_duration_seconds_count', ok === undefined ? { operation } : { operation, ok: String(ok) });

/** Listens once, so that concurrent supertest requests share one server instead of each starting it. */
function listening(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

/** A span that keeps its name, parent and attributes: enough of a TracerProvider to see the library's spans, with no SDK. */
class RecordedSpan implements Span {
  readonly attributes: Record<string, unknown> = {};
  ended = false;
  constructor(readonly name: string) {}
  spanContext(): SpanContext {
    return { traceId: '1'.padStart(32, '0'), spanId: '1'.padStart(16, '0'), traceFlags: 1 };
  }
  setAttribute(key: string, value: unknown): this {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Record<string, unknown>): this {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent = (): this => this;
  addLink = (): this => this;
  addLinks = (): this => this;
  setStatus = (): this => this;
  updateName = (): this => this;
  recordException = (): void => undefined;
  isRecording = (): boolean => true;
  end(): void {
    this.ended = true;
  }
}

class RecordingTracerProvider implements TracerProvider {
  readonly spans: RecordedSpan[] = [];
  getTracer(): Tracer {
    return {
      startSpan: (name: string, _options?: unknown, _context?: Context) => {
        const span = new RecordedSpan(name);
        this.spans.push(span);
        return span;
      },
      startActiveSpan: ((): never => {
        throw new Error('not used by the library');
      }) as Tracer['startActiveSpan'],
    };
  }
}

describe.each(['express', 'fastify'] as const)('every idempotency outcome is observable on the payments API on sqlite with %s (R27)', (platform) => {
  let payments: RunningPaymentsApp;
  let probe: RunningProbeApp;
  const outcomes: IdempotencyOutcomeMessage[] = [];
  const storeCalls: IdempotencyStoreCallMessage[] = [];
  const onOutcome = (message: unknown): void => void outcomes.push(message as IdempotencyOutcomeMessage);
  const onStoreCall = (message: unknown): void => void storeCalls.push(message as IdempotencyStoreCallMessage);

  beforeAll(async () => {
    subscribe(IDEMPOTENCY_CHANNELS.outcome, onOutcome);
    subscribe(IDEMPOTENCY_CHANNELS.store, onStoreCall);
    payments = await startPaymentsApp('sqlite', platform, 'observability');
    await listening(payments.server);
    probe = await startProbeApp({ database: 'sqlite', platform, suite: 'observability_probe' });
  });

  afterAll(async () => {
    unsubscribe(IDEMPOTENCY_CHANNELS.outcome, onOutcome);
    unsubscribe(IDEMPOTENCY_CHANNELS.store, onStoreCall);
    await payments?.close();
    await probe?.close();
  });

  async function metrics(): Promise<string> {
    const response = await request(payments.server).get('/metrics');
    expect(response.status).toBe(200);
    return response.text;
  }

  /** The outcome messages published for one (account, key), found by the hash they carry instead of the key. */
  function messagesOf(account: string, key: string): IdempotencyOutcomeMessage[] {
    return outcomes.filter((message) => message.keyHash === keyHashOf(account, key));
  }

  /** The one message of (account, key), once published, checked field by field: nothing more, and never the key. */
  async function messageOf(
    account: string,
    key: string,
    expected: { outcome: IdempotencyOutcome; route: string; status?: number; waited?: boolean; transport?: 'http' | 'runOnce' },
  ): Promise<IdempotencyOutcomeMessage> {
    const [message] = await eventually(async () => (messagesOf(account, key).length > 0 ? messagesOf(account, key) : undefined), 50, 20);
    expect(messagesOf(account, key)).toHaveLength(1);
    expect(message).toEqual({
      outcome: expected.outcome,
      account,
      route: expected.route,
      keyHash: keyHashOf(account, key),
      transport: expected.transport ?? 'http',
      totalMs: expect.any(Number),
      storeMs: expect.any(Number),
      ...(expected.waited ? { waitMs: expect.any(Number) } : {}),
      ...(expected.status === undefined ? {} : { status: expected.status }),
    });
    expect(message.storeMs).toBeGreaterThan(0);
    expect(message.storeMs).toBeLessThanOrEqual(message.totalMs);
    expect(JSON.stringify(message)).not.toContain(key);
    return message;
  }

  function postExport(key: string, body: { datastreamId: number; processingMs?: number }) {
    return request(payments.server).post('/v1/exports').set('X-Api-Key', 'key-acme').set('Idempotency-Key', key).send(body);
  }

  const newExport = (processingMs = 0) => ({ key: randomUUID(), body: { datastreamId: randomInt(1, 2 ** 31), processingMs } });

  /** Resolves once the first request has claimed `key`: the retry is then really sent while it is in flight. */
  async function claimed(key: string): Promise<void> {
    await eventually(async () => {
      const rows = await queryRows<{ n: string | number }>(
        payments.dataSource,
        "SELECT COUNT(*) AS n FROM idempotency_records WHERE idempotency_key = ? AND state = 'in_flight'",
        [key],
      );
      return Number(rows[0].n) === 1 ? true : undefined;
    }, 500, 10);
  }

  it('serves GET /metrics without an API key, in Prometheus text format', async () => {
    const response = await request(payments.server).get('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.text).toContain('# TYPE idempotency_requests_total counter');
    expect(response.text).toContain('# TYPE idempotency_in_flight_wait_seconds histogram');
    expect(response.text).toContain('# TYPE idempotency_store_call_duration_seconds histogram');
  });

  it('publishes fresh with the route, account, key hash, status and timings once a new key has run and been stored, and /metrics counts it and its store calls (R27, R8)', async () => {
    const before = await metrics();
    const { key, body } = newExport();
    expect((await postExport(key, body)).status).toBe(202);

    await messageOf(ACCOUNT, key, { outcome: 'fresh', route: EXPORTS, status: 202 });
    const after = await metrics();
    expect(requestsOf(after, EXPORTS, 'fresh')).toBe(requestsOf(before, EXPORTS, 'fresh') + 1);
    expect(storeCallsOf(after, 'claim', true)).toBeGreaterThan(storeCallsOf(before, 'claim', true));
    expect(storeCallsOf(after, 'complete', true)).toBeGreaterThan(storeCallsOf(before, 'complete', true));
  });

  it('labels a route by its pattern, not by the path with its ids, so that each route is one series (R27)', async () => {
    const key = randomUUID();
    const before = await metrics();
    const answer = await request(payments.server)
      .delete(`/v1/exports/exp_${randomUUID().replaceAll('-', '')}`)
      .set('X-Api-Key', 'key-acme')
      .set('Idempotency-Key', key);
    expect(answer.status).toBe(404);
    await messageOf(ACCOUNT, key, { outcome: 'fresh', route: 'DELETE /v1/exports/:id', status: 404 });
    expect(requestsOf(await metrics(), 'DELETE /v1/exports/:id', 'fresh')).toBe(requestsOf(before, 'DELETE /v1/exports/:id', 'fresh') + 1);
  });

  it('publishes replayed with the stored status when the same request comes again, and /metrics counts it (R27, R9)', async () => {
    const { key, body } = newExport();
    await postExport(key, body);
    outcomes.length = 0;
    const before = await metrics();
    const replay = await postExport(key, body);
    expect(replay.headers['idempotency-replayed']).toBe('true');

    await messageOf(ACCOUNT, key, { outcome: 'replayed', route: EXPORTS, status: 202 });
    expect(requestsOf(await metrics(), EXPORTS, 'replayed')).toBe(requestsOf(before, EXPORTS, 'replayed') + 1);
  });

  it('publishes waited with waitMs for a retry that waited for the first attempt and got its replay, and /metrics has the wait in its histogram (R27, R11)', async () => {
    const { key, body } = newExport(800);
    const before = await metrics();
    const first = postExport(key, body).then((response) => response);
    await claimed(key);
    const retry = await postExport(key, body);
    await first;
    expect(retry.headers['idempotency-replayed']).toBe('true');

    const waited = messagesOf(ACCOUNT, key).find((message) => message.outcome === 'waited');
    expect(waited).toEqual(expect.objectContaining({ route: EXPORTS, status: 202, waitMs: expect.any(Number) }));
    expect(waited!.waitMs).toBeGreaterThan(0);
    expect(messagesOf(ACCOUNT, key).map((message) => message.outcome).sort()).toEqual(['fresh', 'waited']);
    const after = await metrics();
    expect(requestsOf(after, EXPORTS, 'waited')).toBe(requestsOf(before, EXPORTS, 'waited') + 1);
    expect(waitsOf(after, 'waited')).toBe(waitsOf(before, 'waited') + 1);
  });

  it('publishes conflict with status 409 and the whole wait in waitMs when the first attempt outlasts inFlightWaitMs (R27, R11)', async () => {
    const { key, body } = newExport(4000);
    const before = await metrics();
    const first = postExport(key, body).then((response) => response);
    await claimed(key);
    const conflict = await postExport(key, body);
    expect(conflict.status).toBe(409);

    const refused = messagesOf(ACCOUNT, key).find((message) => message.outcome === 'conflict');
    expect(refused).toEqual(expect.objectContaining({ route: EXPORTS, status: 409 }));
    // The library's default wait is 3 s.
    expect(refused!.waitMs).toBeGreaterThanOrEqual(2900);
    expect(JSON.stringify(refused)).not.toContain(key);
    const after = await metrics();
    expect(requestsOf(after, EXPORTS, 'conflict')).toBe(requestsOf(before, EXPORTS, 'conflict') + 1);
    expect(waitsOf(after, 'conflict')).toBe(waitsOf(before, 'conflict') + 1);
    expect((await first).status).toBe(202);
  });

  it('publishes reuse with status 422 for the same key with another body, and /metrics counts it (R27, R10)', async () => {
    const { key, body } = newExport();
    await postExport(key, body);
    outcomes.length = 0;
    const before = await metrics();
    expect((await postExport(key, { ...body, datastreamId: body.datastreamId + 1 })).status).toBe(422);

    await messageOf(ACCOUNT, key, { outcome: 'reuse', route: EXPORTS, status: 422 });
    expect(requestsOf(await metrics(), EXPORTS, 'reuse')).toBe(requestsOf(before, EXPORTS, 'reuse') + 1);
  });

  it('publishes released with status 400 when a rejected body released the key, and /metrics counts it (R27, R14)', async () => {
    const key = randomUUID();
    const before = await metrics();
    const rejected = await request(payments.server)
      .post('/v1/payments')
      .set('X-Api-Key', 'key-acme')
      .set('Idempotency-Key', key)
      .send({ amount: -5, currency: 'EUR', customerId: 'cus_observe' });
    expect(rejected.status).toBe(400);

    await messageOf(ACCOUNT, key, { outcome: 'released', route: 'POST /v1/payments', status: 400 });
    const after = await metrics();
    expect(requestsOf(after, 'POST /v1/payments', 'released')).toBe(requestsOf(before, 'POST /v1/payments', 'released') + 1);
    expect(storeCallsOf(after, 'release', true)).toBeGreaterThan(storeCallsOf(before, 'release', true));
  });

  it('publishes unavailable with status 503 when the store cannot answer, and /metrics counts it and the failed store call (R27, R18)', async () => {
    const { key, body } = newExport();
    const before = await metrics();
    await payments.dataSource.query('ALTER TABLE idempotency_records RENAME TO idempotency_records_away');
    try {
      expect((await postExport(key, body)).status).toBe(503);
    } finally {
      await payments.dataSource.query('ALTER TABLE idempotency_records_away RENAME TO idempotency_records');
    }

    await messageOf(ACCOUNT, key, { outcome: 'unavailable', route: EXPORTS, status: 503 });
    const after = await metrics();
    expect(requestsOf(after, EXPORTS, 'unavailable')).toBe(requestsOf(before, EXPORTS, 'unavailable') + 1);
    expect(storeCallsOf(after, 'claim', false)).toBe(storeCallsOf(before, 'claim', false) + 1);
  });

  it('publishes takeover for the retry that took over a claim whose lease ended while it waited, and lost_claim for the fenced first attempt (R27, R20)', async () => {
    const { key, body } = newExport(1500);
    const before = await metrics();
    const first = postExport(key, body).then((response) => response);
    await claimed(key);
    const polled = storeCalls.length;
    const retry = postExport(key, body).then((response) => response);
    // Once the retry is polling, the first attempt "dies": its lease ends, as if its process had stopped renewing it.
    await eventually(async () => (storeCalls.slice(polled).some((call) => call.operation === 'inspect' && call.route === EXPORTS) ? true : undefined), 300, 10);
    await queryRows(payments.dataSource, 'UPDATE idempotency_records SET lease_expires_at = 0 WHERE idempotency_key = ?', [key]);
    const [original, takenOver] = await Promise.all([first, retry]);
    expect(original.status).toBe(202);
    expect(takenOver.status).toBe(202);
    expect(takenOver.headers['idempotency-replayed']).toBeUndefined();

    await eventually(async () => (messagesOf(ACCOUNT, key).length === 2 ? true : undefined), 50, 20);
    const byOutcome = Object.fromEntries(messagesOf(ACCOUNT, key).map((message) => [message.outcome, message]));
    expect(Object.keys(byOutcome).sort()).toEqual(['lost_claim', 'takeover']);
    expect(byOutcome.takeover).toEqual(expect.objectContaining({ route: EXPORTS, status: 202, waitMs: expect.any(Number) }));
    expect(byOutcome.lost_claim).toEqual(expect.objectContaining({ route: EXPORTS, status: 202 }));
    expect(byOutcome.lost_claim).not.toHaveProperty('waitMs');
    expect(JSON.stringify(byOutcome)).not.toContain(key);
    const after = await metrics();
    expect(requestsOf(after, EXPORTS, 'takeover')).toBe(requestsOf(before, EXPORTS, 'takeover') + 1);
    expect(requestsOf(after, EXPORTS, 'lost_claim')).toBe(requestsOf(before, EXPORTS, 'lost_claim') + 1);
    expect(waitsOf(after, 'takeover')).toBe(waitsOf(before, 'takeover') + 1);
  });

  it('publishes not_replayable for a streamed response; the channels are process-wide, so the example\'s /metrics counts the other app in the process too (R27, R16b)', async () => {
    const key = randomUUID();
    const before = await metrics();
    const streamed = await request(probe.server).post('/probe/stream').set('X-Account', 'acct-observe').set('Idempotency-Key', key).buffer(true);
    expect(streamed.status).toBe(201);

    await messageOf('acct-observe', key, { outcome: 'not_replayable', route: 'POST /probe/stream', status: 201 });
    expect(requestsOf(await metrics(), 'POST /probe/stream', 'not_replayable')).toBe(requestsOf(before, 'POST /probe/stream', 'not_replayable') + 1);
  });

  it('publishes runOnce outcomes with transport runOnce, the scope as route and no HTTP status: a webhook event fresh, then replayed (R27, R23)', async () => {
    const eventId = `evt_${randomUUID().replaceAll('-', '')}`;
    const raw = JSON.stringify({ id: eventId, type: 'payment.succeeded', data: { paymentId: 'pay_1', amount: 4200 } });
    const deliver = () =>
      request(payments.server)
        .post('/v1/webhooks/provider')
        .set('Content-Type', 'application/json')
        .set('X-Provider-Signature', `sha256=${createHmac('sha256', TEST_WEBHOOK_SECRET).update(raw).digest('hex')}`)
        .send(raw);
    const route = 'runOnce webhook:provider';
    const account = 'runOnce:webhook:provider';
    const before = await metrics();
    expect((await deliver()).status).toBe(200);
    await messageOf(account, eventId, { outcome: 'fresh', route, transport: 'runOnce' });
    outcomes.length = 0;
    expect((await deliver()).status).toBe(200);
    await messageOf(account, eventId, { outcome: 'replayed', route, transport: 'runOnce' });

    const after = await metrics();
    expect(requestsOf(after, route, 'fresh')).toBe(requestsOf(before, route, 'fresh') + 1);
    expect(requestsOf(after, route, 'replayed')).toBe(requestsOf(before, route, 'replayed') + 1);
  });

  describe('with @opentelemetry/api and a tracer provider registered', () => {
    let provider: RecordingTracerProvider;

    afterEach(() => {
      trace.disable();
    });

    it('traces the claim and the completion of a request as spans carrying its outcome, route and key hash, never its key (R27)', async () => {
      provider = new RecordingTracerProvider();
      trace.setGlobalTracerProvider(provider);
      const { key, body } = newExport();
      expect((await postExport(key, body)).status).toBe(202);

      const spans = provider.spans.filter((span) => span.attributes['idempotency.key_hash'] === keyHashOf(ACCOUNT, key));
      expect(spans.map((span) => [span.name, span.attributes['idempotency.outcome'], span.ended])).toEqual([
        ['idempotency.claim', 'fresh', true],
        ['idempotency.complete', 'fresh', true],
      ]);
      expect(spans[0].attributes).toEqual(
        expect.objectContaining({ 'idempotency.route': EXPORTS, 'idempotency.transport': 'http', 'idempotency.account': ACCOUNT }),
      );
      expect(JSON.stringify(provider.spans.map((span) => span.attributes))).not.toContain(key);
    });
  });
});

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { problemJsonErrorFormatter } from 'nestjs-idempotency';
import request from 'supertest';
import type { HttpPlatform } from '../src/bootstrap.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import type { DatabaseKind } from './support/test-database.js';

// Both platforms on SQLite for speed, and each server database once for each error format.
const MATRIX: ReadonlyArray<readonly [DatabaseKind, HttpPlatform]> = [
  ['sqlite', 'express'],
  ['sqlite', 'fastify'],
  ['mariadb', 'express'],
  ['postgres', 'fastify'],
];
const PROBLEM_MATRIX: ReadonlyArray<readonly [DatabaseKind, HttpPlatform]> = [
  ['sqlite', 'express'],
  ['mariadb', 'fastify'],
  ['postgres', 'express'],
];

type Refusal = 'missing' | 'invalid' | 'reuse' | 'conflict';

/** Waits until a handler has started, i.e. the first request holds its claim: no fixed sleep. */
async function handlerStarted(probe: RunningProbeApp, route: string, count: number): Promise<void> {
  for (let i = 0; i < 400 && probe.runs.count(route) < count; i++) await sleep(5);
  expect(probe.runs.count(route)).toBe(count);
}

/**
 * Provokes one refusal of each kind. The conflict holds /probe/slow (inFlightWaitMs 200) for 1.5 s
 * with a first request and sends the same request again while it is in flight; the first request
 * is left to finish in `inFlight`, which the suite awaits before closing the app.
 */
async function provoke(probe: RunningProbeApp, refusal: Refusal, inFlight: Array<Promise<unknown>>): Promise<request.Response> {
  const server = probe.server;
  if (refusal === 'missing') return request(server).post('/probe/required').send({ a: 1 });
  if (refusal === 'invalid') return request(server).post('/probe/echo').set('Idempotency-Key', 'not-a-uuid').send({ a: 1 });
  const key = randomUUID();
  if (refusal === 'reuse') {
    await request(server).post('/probe/echo').set('Idempotency-Key', key).send({ amount: 1 }).expect(201);
    return request(server).post('/probe/echo').set('Idempotency-Key', key).send({ amount: 2 });
  }
  const started = probe.runs.count('slow') + 1;
  const first = request(server).post('/probe/slow').set('Idempotency-Key', key).send({ ms: 1500 }).then((r) => r);
  await handlerStarted(probe, 'slow', started);
  inFlight.push(first);
  return request(server).post('/probe/slow').set('Idempotency-Key', key).send({ ms: 1500 });
}

const EXPECTED: Record<Refusal, { status: number; code: string }> = {
  missing: { status: 400, code: 'idempotency_key_missing' },
  invalid: { status: 400, code: 'invalid_idempotency_key' },
  reuse: { status: 422, code: 'idempotency_key_reuse' },
  conflict: { status: 409, code: 'idempotency_conflict' },
};

describe.each(MATRIX)('error answers on %s with %s', (database, platform) => {
  let probe: RunningProbeApp;
  const inFlight: Array<Promise<unknown>> = [];

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform, suite: 'errors' });
  });

  afterAll(async () => {
    await Promise.allSettled(inFlight);
    await probe?.close();
  });

  it.each(['missing', 'invalid', 'reuse', 'conflict'] as const)(
    'answers the %s refusal with exactly {"error":{"code","message"}} as application/json (R17)',
    async (refusal) => {
      const { status, code } = EXPECTED[refusal];
      const response = await provoke(probe, refusal, inFlight);
      expect(response.status).toBe(status);
      expect(response.headers['content-type']).toMatch(/^application\/json(;|$)/);
      const body = JSON.parse(response.text) as { error: { code: string; message: string } };
      expect(body).toStrictEqual({ error: { code, message: expect.any(String) } });
      expect(body.error.message.length).toBeGreaterThan(0);
      expect(response.text).toBe(JSON.stringify(body));
      expect(response.headers['idempotency-replayed']).toBeUndefined();
    },
  );

  it('answers a request sent again while the first is in flight with 409 idempotency_conflict and a positive integer Retry-After (R11)', async () => {
    const response = await provoke(probe, 'conflict', inFlight);
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('idempotency_conflict');
    expect(response.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  });

  it('answers a different request under an in-flight key with 422 while the first is still running, without waiting for it (R10)', async () => {
    // slow-waiting would wait up to 5 s for a same-fingerprint retry; a reuse must not wait at all.
    const key = randomUUID();
    const started = probe.runs.count('slow-waiting') + 1;
    let firstAnswered = false;
    const first = request(probe.server)
      .post('/probe/slow-waiting')
      .set('Idempotency-Key', key)
      .send({ ms: 1500 })
      .then((r) => {
        firstAnswered = true;
        return r;
      });
    inFlight.push(first);
    await handlerStarted(probe, 'slow-waiting', started);
    const reuse = await request(probe.server).post('/probe/slow-waiting').set('Idempotency-Key', key).send({ ms: 1499 });
    expect(firstAnswered).toBe(false);
    expect(reuse.status).toBe(422);
    expect(reuse.body.error.code).toBe('idempotency_key_reuse');
    expect(probe.runs.count('slow-waiting')).toBe(started);
  });

  it('answers key reuse with 409 idempotency_key_reuse on a route set to mismatchStatus 409 (R10)', async () => {
    const key = randomUUID();
    const first = await request(probe.server).post('/probe/conflict-409').set('Idempotency-Key', key).send({ amount: 1 }).expect(201);
    const reuse = await request(probe.server).post('/probe/conflict-409').set('Idempotency-Key', key).send({ amount: 2 }).expect(409);
    expect(reuse.body).toStrictEqual({ error: { code: 'idempotency_key_reuse', message: expect.any(String) } });
    // The refusal left the stored response as it was (R16a).
    const replay = await request(probe.server).post('/probe/conflict-409').set('Idempotency-Key', key).send({ amount: 1 }).expect(201);
    expect(replay.text).toBe(first.text);
    expect(replay.headers['idempotency-replayed']).toBe('true');
  });
});

describe.each(PROBLEM_MATRIX)('problem+json errors and mismatchStatus 409 on %s with %s', (database, platform) => {
  let probe: RunningProbeApp;
  const inFlight: Array<Promise<unknown>> = [];

  beforeAll(async () => {
    probe = await startProbeApp({
      database,
      platform,
      suite: 'errors_problem',
      options: { errorFormatter: problemJsonErrorFormatter, mismatchStatus: 409 },
    });
  });

  afterAll(async () => {
    await Promise.allSettled(inFlight);
    await probe?.close();
  });

  it.each([
    ['missing', 400, 'idempotency_key_missing'],
    ['invalid', 400, 'invalid_idempotency_key'],
    ['reuse', 409, 'idempotency_key_reuse'],
    ['conflict', 409, 'idempotency_conflict'],
  ] as const)('answers the %s refusal as application/problem+json with code, status, title and detail (R17)', async (refusal, status, code) => {
    const response = await provoke(probe, refusal, inFlight);
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json(;|$)/);
    const body = JSON.parse(response.text) as Record<string, unknown>;
    expect(body).toMatchObject({ code, status, title: expect.any(String), detail: expect.any(String) });
    expect(body.error).toBeUndefined();
    if (refusal === 'conflict') expect(response.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  });

  it('answers key reuse with 409 on a route that sets no status when the module sets mismatchStatus 409 (R10)', async () => {
    const key = randomUUID();
    await request(probe.server).post('/probe/items/5').set('Idempotency-Key', key).send({ amount: 1 }).expect(201);
    const reuse = await request(probe.server).post('/probe/items/5').set('Idempotency-Key', key).send({ amount: 2 }).expect(409);
    expect(reuse.body.code).toBe('idempotency_key_reuse');
  });
});

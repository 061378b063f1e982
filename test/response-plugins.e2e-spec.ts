import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ClassSerializerInterceptor } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import type { HttpPlatform } from '../src/bootstrap.js';
import { listenOnLoopback, sendCoded, type CodedResponse } from './support/coded-http.js';
import { OrderNotFoundFilter, PluginProbeController } from './support/plugin-probe.controller.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { CORS_ORIGIN, productionPlugins } from './support/response-plugins.js';
import { storedRecord } from './support/stored-records.js';

const PLATFORMS: readonly HttpPlatform[] = ['express', 'fastify'];

function json(response: CodedResponse): Record<string, unknown> {
  return JSON.parse(response.decoded.toString('utf8')) as Record<string, unknown>;
}

function expectReplayOf(replay: CodedResponse, original: CodedResponse): void {
  expect(replay.status).toBe(original.status);
  expect(replay.headers['idempotency-replayed']).toBe('true');
  expect(replay.headers['content-type']).toBe(original.headers['content-type']);
  expect(replay.decoded.equals(original.decoded)).toBe(true);
}

describe.each(PLATFORMS)('replays behind the plugins production apps run, on %s', (platform) => {
  let probe: RunningProbeApp;

  beforeAll(async () => {
    probe = await startProbeApp({
      database: 'sqlite',
      platform,
      suite: 'response_plugins',
      controllers: [PluginProbeController],
      configure: async (app) => {
        await productionPlugins(platform)(app);
        app.useGlobalInterceptors(new ClassSerializerInterceptor(app.get(Reflector)));
        app.useGlobalFilters(new OrderNotFoundFilter(app.get(HttpAdapterHost)));
      },
    });
    await listenOnLoopback(probe.server);
  });

  afterAll(async () => {
    await probe?.close();
  });

  const post = (path: string, headers: Record<string, string>): Promise<CodedResponse> =>
    sendCoded(probe.server, 'POST', path, { 'Accept-Encoding': 'gzip, deflate, br', ...headers });

  it('never replays a field that ClassSerializerInterceptor kept out of the first response (R9)', async () => {
    const key = randomUUID();
    const original = await post('/plugins/account', { 'Idempotency-Key': key });
    const replay = await post('/plugins/account', { 'Idempotency-Key': key });

    expect(original.status).toBe(201);
    expect(json(original)).toEqual({ id: 'acct_1', run: expect.any(Number) });
    expect(original.decoded.toString('utf8')).not.toContain('argon2id');
    expectReplayOf(replay, original);
    expect(probe.runs.count('plugins-account')).toBe(json(original).run);
    expect((await storedRecord(probe.dataSource, key))?.body.toString('utf8')).not.toContain('argon2id');
  });

  it('sends CORS and helmet headers on replays from the middleware, per request, never from the store (R15)', async () => {
    const key = randomUUID();
    const original = await post('/plugins/large', { 'Idempotency-Key': key, Origin: CORS_ORIGIN });
    const replay = await post('/plugins/large', { 'Idempotency-Key': key, Origin: CORS_ORIGIN });
    const otherOrigin = await post('/plugins/large', { 'Idempotency-Key': key, Origin: 'https://elsewhere.example' });

    for (const response of [original, replay]) {
      expect(response.headers['access-control-allow-origin']).toBe(CORS_ORIGIN);
      expect(String(response.headers['access-control-expose-headers'])).toContain('Idempotency-Replayed');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['content-security-policy']).toContain("default-src 'self'");
    }
    expectReplayOf(replay, original);
    // The allowed origin is decided again for each request: a replay to another origin gets none.
    expectReplayOf(otherOrigin, original);
    expect(otherOrigin.headers['access-control-allow-origin']).toBeUndefined();
    expect(otherOrigin.headers['x-content-type-options']).toBe('nosniff');

    const stored = await storedRecord(probe.dataSource, key);
    expect(Object.keys(stored?.headers ?? {}).sort()).toEqual(['content-type']);
  });

  it('gives a replay the ETag the framework computes for the stored representation, not a stored one (R9, R15)', async () => {
    const key = randomUUID();
    const original = await post('/plugins/large', { 'Idempotency-Key': key, 'Accept-Encoding': 'identity' });
    const replay = await post('/plugins/large', { 'Idempotency-Key': key, 'Accept-Encoding': 'identity' });

    expect(original.headers.etag).toEqual(expect.stringMatching(/^(W\/)?"/));
    expectReplayOf(replay, original);
    expect(replay.headers.etag).toBe(original.headers.etag);
    expect(Object.keys((await storedRecord(probe.dataSource, key))?.headers ?? {})).not.toContain('etag');
  });

  it('stores and replays what a global exception filter made of a thrown error (R16)', async () => {
    const key = randomUUID();
    const runsBefore = probe.runs.count('plugins-missing-order');
    const original = await post('/plugins/missing-order', { 'Idempotency-Key': key });
    const replay = await post('/plugins/missing-order', { 'Idempotency-Key': key });

    expect(original.status).toBe(404);
    expect(original.headers['content-type']).toContain('application/vnd.shop.error+json');
    expect(json(original)).toEqual({ failure: { kind: 'order_not_found', order: 'ord_404', rewrittenBy: 'OrderNotFoundFilter' } });
    expectReplayOf(replay, original);
    expect(probe.runs.count('plugins-missing-order')).toBe(runsBefore + 1);
  });

  it('sends a StreamableFile as it is, compressed for the client, and stores nothing: a retry runs again (R16b)', async () => {
    const key = randomUUID();
    const first = await post('/plugins/file', { 'Idempotency-Key': key });
    const second = await post('/plugins/file', { 'Idempotency-Key': key });

    for (const [response, run] of [[first, 1], [second, 2]] as const) {
      expect(response.status).toBe(201);
      expect(response.headers['idempotency-replayed']).toBeUndefined();
      expect(response.headers['content-type']).toContain('text/csv');
      expect(['gzip', 'deflate', 'br']).toContain(response.headers['content-encoding']);
      const rows = response.decoded.toString('utf8').trim().split('\n');
      expect(rows).toHaveLength(100);
      expect(rows[99]).toBe(`99,row 99 of export run ${run}`);
    }
    expect(await storedRecord(probe.dataSource, key)).toBeUndefined();
  });

  it('streams server-sent events as they are and stores nothing: a retry runs again (R16b)', async () => {
    const key = randomUUID();
    const runsBefore = probe.runs.count('plugins-events');
    const first = await post('/plugins/events', { 'Idempotency-Key': key, 'Accept-Encoding': 'identity' });
    const second = await post('/plugins/events', { 'Idempotency-Key': key, 'Accept-Encoding': 'identity' });

    for (const [response, run] of [[first, runsBefore + 1], [second, runsBefore + 2]] as const) {
      expect(response.headers['content-type']).toContain('text/event-stream');
      expect(response.headers['idempotency-replayed']).toBeUndefined();
      const events = response.decoded.toString('utf8').match(/^data: .*$/gm) ?? [];
      expect(events).toEqual([0, 1, 2].map((index) => `data: ${JSON.stringify({ run, index })}`));
    }
    expect(await storedRecord(probe.dataSource, key)).toBeUndefined();
  });

});

// Only Fastify sends a Buffer a handler returns as it is (Nest on Express turns it into JSON), so only
// there can a handler hand over bytes it coded itself.
describe('a body the handler coded itself, on fastify', () => {
  let probe: RunningProbeApp;

  beforeAll(async () => {
    probe = await startProbeApp({
      database: 'sqlite',
      platform: 'fastify',
      suite: 'handler_coded',
      controllers: [PluginProbeController],
      configure: productionPlugins('fastify'),
    });
    await listenOnLoopback(probe.server);
  });

  afterAll(async () => {
    await probe?.close();
  });

  it('is sent as it is, and the key released rather than stored as bytes no replay could label (R15, R16b)', async () => {
    const key = randomUUID();
    const headers = { 'Idempotency-Key': key, 'Accept-Encoding': 'gzip' };
    const first = await sendCoded(probe.server, 'POST', '/plugins/pre-gzipped', headers);
    const second = await sendCoded(probe.server, 'POST', '/plugins/pre-gzipped', headers);

    expect(first.headers['content-encoding']).toBe('gzip');
    expect(json(first)).toEqual({ run: 1, coded: 'by the handler' });
    expect(second.headers['idempotency-replayed']).toBeUndefined();
    expect(json(second)).toEqual({ run: 2, coded: 'by the handler' });
    expect(await storedRecord(probe.dataSource, key)).toBeUndefined();
  });
});

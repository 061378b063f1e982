import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import request from 'supertest';
import { PLATFORM_MATRIX, startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { bodyBytes, bytes, expectFresh, expectReplayOf, json } from './support/raw-responses.js';
import { queryRows } from './support/test-database.js';

const STORED_ERROR_STATUSES = [402, 404, 410, 422];
const RELEASED_STATUSES = [400, 401, 403, 408, 409, 423, 425, 429, 500, 502, 503];


describe.each(PLATFORM_MATRIX)('outcomes on %s with %s', (database, platform) => {
  describe('default options', () => {
    let running: RunningProbeApp;
    let warn: jest.Spied<Logger['warn']>;

    beforeAll(async () => {
      warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      running = await startProbeApp({ database, platform, suite: 'outcomes', logger: ['error', 'warn'] });
    });

    afterAll(async () => {
      await running?.close();
      warn?.mockRestore();
    });

    const post = (path: string, key: string) => bytes(request(running.server).post(path).set('Idempotency-Key', key));

    function warningsNaming(route: string): string[] {
      return warn.mock.calls.map(([message]: unknown[]) => String(message)).filter((message) => message.includes(route));
    }

    it('stores a 201 success and replays it without running the handler again (R8, R9, R13, R14)', async () => {
      const key = randomUUID();
      const before = running.runs.count('status-201');
      const first = await post('/probe/status/201', key);
      expect(first.status).toBe(201);
      expectFresh(first);
      expect(json(first)).toEqual({ run: before + 1 });
      expectReplayOf(await post('/probe/status/201', key), first);
      expect(running.runs.count('status-201')).toBe(before + 1);
    });

    it('stores a 200 success (DELETE) and replays it without running the handler again (R8, R9, R13, R14)', async () => {
      const key = randomUUID();
      const before = running.runs.count('delete');
      const remove = () => bytes(request(running.server).delete('/probe/delete/42').set('Idempotency-Key', key));
      const first = await remove();
      expect(first.status).toBe(200);
      expectFresh(first);
      expectReplayOf(await remove(), first);
      expect(running.runs.count('delete')).toBe(before + 1);
    });

    it.each(STORED_ERROR_STATUSES)('stores a %i answer and replays it without running the handler again (R9, R13, R14)', async (status) => {
      const key = randomUUID();
      const route = `status-${status}`;
      const before = running.runs.count(route);
      const first = await post(`/probe/status/${status}`, key);
      expect(first.status).toBe(status);
      expectFresh(first);
      expect(json(first)).toEqual({ error: { code: `status_${status}`, run: before + 1 } });

      const replay = await post(`/probe/status/${status}`, key);
      expectReplayOf(replay, first);
      expect(running.runs.count(route)).toBe(before + 1);
    });

    it.each(RELEASED_STATUSES)(
      'does not store a %i answer: the same key runs the handler again, with no Idempotency-Replayed (R13, R14)',
      async (status) => {
        const key = randomUUID();
        const route = `status-${status}`;
        const before = running.runs.count(route);
        const first = await post(`/probe/status/${status}`, key);
        const second = await post(`/probe/status/${status}`, key);
        for (const [index, response] of [first, second].entries()) {
          expect(response.status).toBe(status);
          expectFresh(response);
          expect(json(response)).toEqual({ error: { code: `status_${status}`, run: before + 1 + index } });
        }
        expect(running.runs.count(route)).toBe(before + 2);
      },
    );

    it('releases the key when the handler throws a plain Error (500): the same key runs the handler again (R14)', async () => {
      const key = randomUUID();
      const before = running.runs.count('throw');
      const first = await post('/probe/throw', key);
      const second = await post('/probe/throw', key);
      for (const response of [first, second]) {
        expect(response.status).toBe(500);
        expectFresh(response);
      }
      expect(running.runs.count('throw')).toBe(before + 2);
    });

    it('replays the allow-listed and route-named headers, never set-cookie or unlisted ones, with the same body and length (R15)', async () => {
      const key = randomUUID();
      const before = running.runs.count('headers');
      const first = await post('/probe/headers', key);
      expect(first.status).toBe(201);
      expectFresh(first);
      expect(first.headers['x-custom']).toBe('kept');
      expect(first.headers['x-not-stored']).toBe('dropped');
      expect(first.headers['set-cookie']).toEqual(['session=secret']);
      expect(first.headers.location).toBe('/probe/things/1');

      const replay = await post('/probe/headers', key);
      expectReplayOf(replay, first);
      expect(replay.headers['x-custom']).toBe('kept');
      expect(replay.headers.location).toBe('/probe/things/1');
      expect(replay.headers['set-cookie']).toBeUndefined();
      expect(replay.headers['x-not-stored']).toBeUndefined();
      expect(running.runs.count('headers')).toBe(before + 1);
    });

    it('replays an HttpException answered by the exception filter exactly as it was sent (R16)', async () => {
      const key = randomUUID();
      const first = await post('/probe/status/402', key);
      expect(first.status).toBe(402);
      expect(first.headers['content-type']).toMatch(/^application\/json/);
      const replay = await post('/probe/status/402', key);
      expectReplayOf(replay, first);
      expect(bodyBytes(replay).toString('utf8')).toBe(bodyBytes(first).toString('utf8'));
    });

    it('replays a text/plain body with its exact bytes and content-type (R9, R15)', async () => {
      const key = randomUUID();
      const before = running.runs.count('text');
      const first = await post('/probe/text', key);
      expect(first.status).toBe(201);
      expectFresh(first);
      expect(first.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(bodyBytes(first).toString('utf8')).toBe(`plain text run ${before + 1}\n`);

      const replay = await post('/probe/text', key);
      expectReplayOf(replay, first);
      expect(replay.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(running.runs.count('text')).toBe(before + 1);
    });

    it('sends a StreamableFile as it is without storing it, and warns once naming the route (R16b)', async () => {
      const key = randomUUID();
      const before = running.runs.count('stream');
      const first = await post('/probe/stream', key);
      const second = await post('/probe/stream', key);
      const third = await post('/probe/stream', key);
      for (const [index, response] of [first, second, third].entries()) {
        expect(response.status).toBe(201);
        expectFresh(response);
        expect(bodyBytes(response).toString('utf8')).toBe(`chunk one, run ${before + 1 + index}`);
      }
      expect(running.runs.count('stream')).toBe(before + 3);
      expect(warningsNaming('POST /probe/stream')).toHaveLength(1);
    });

    it('sends a response the handler wrote itself through @Res() as it is without storing it, and warns once naming the route (R16b)', async () => {
      const key = randomUUID();
      const before = running.runs.count('raw');
      const first = await post('/probe/raw', key);
      const second = await post('/probe/raw', key);
      const third = await post('/probe/raw', key);
      for (const [index, response] of [first, second, third].entries()) {
        expect(response.status).toBe(200);
        expectFresh(response);
        expect(json(response)).toEqual({ run: before + 1 + index, raw: true });
      }
      expect(running.runs.count('raw')).toBe(before + 3);
      expect(warningsNaming('POST /probe/raw')).toHaveLength(1);
    });
  });

  describe('storeResponse option that stores 5xx too', () => {
    let running: RunningProbeApp;

    beforeAll(async () => {
      running = await startProbeApp({ database, platform, suite: 'outcomes', options: { storeResponse: (status) => status < 600 } });
    });

    afterAll(async () => {
      await running?.close();
    });

    const post = (path: string, key: string) => bytes(request(running.server).post(path).set('Idempotency-Key', key));

    it.each([
      ['/probe/status/500', 'status-500', 500],
      ['/probe/status/503', 'status-503', 503],
      ['/probe/throw', 'throw', 500],
    ])('stores and replays the answer of %s (5xx) when the storeResponse predicate allows it (R14)', async (path, route, status) => {
      const key = randomUUID();
      const before = running.runs.count(route);
      const first = await post(path, key);
      expect(first.status).toBe(status);
      expectFresh(first);
      expectReplayOf(await post(path, key), first);
      expect(running.runs.count(route)).toBe(before + 1);
    });
  });

  describe('202 Accepted on the payments API', () => {
    let running: RunningPaymentsApp;

    beforeAll(async () => {
      running = await startPaymentsApp(database, platform, 'outcomes');
    });

    afterAll(async () => {
      await running?.close();
    });

    async function exportJobs(): Promise<number> {
      const [row] = (await queryRows(running.dataSource, 'SELECT COUNT(*) AS n FROM export_jobs')) as Array<{ n: string | number }>;
      return Number(row.n);
    }

    it('stores a 202 answer and replays it without queuing a second job (R9, R13, R14)', async () => {
      const key = randomUUID();
      const before = await exportJobs();
      const queue = () =>
        bytes(request(running.server).post('/v1/exports').set('X-Api-Key', 'key-acme').set('Idempotency-Key', key)).send({
          datastreamId: 7,
        });
      const first = await queue();
      expect(first.status).toBe(202);
      expectFresh(first);
      expectReplayOf(await queue(), first);
      expect(await exportJobs()).toBe(before + 1);
    });
  });
});

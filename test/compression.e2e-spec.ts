import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { HttpPlatform } from '../src/bootstrap.js';
import { ENCODINGS, listenOnLoopback, sendCoded, type Encoding } from './support/coded-http.js';
import { PluginProbeController } from './support/plugin-probe.controller.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { compressResponses } from './support/response-plugins.js';
import { storedRecord } from './support/stored-records.js';

const PLATFORMS: readonly HttpPlatform[] = ['express', 'fastify'];
const PAIRS: ReadonlyArray<readonly [Encoding, Encoding]> = ENCODINGS.flatMap((first) =>
  ENCODINGS.map((replay) => [first, replay] as const),
);

function codingFor(accepted: Encoding): string | undefined {
  return accepted === 'identity' ? undefined : accepted;
}

describe.each(PLATFORMS)('replays behind response compression on %s', (platform) => {
  let probe: RunningProbeApp;

  beforeAll(async () => {
    probe = await startProbeApp({
      database: 'sqlite',
      platform,
      suite: 'compression',
      controllers: [PluginProbeController],
      configure: compressResponses(platform),
    });
    await listenOnLoopback(probe.server);
  });

  afterAll(async () => {
    await probe?.close();
  });

  it.each(PAIRS)(
    'first request accepts %s, replay accepts %s: the same representation, coded as the replay asked (R9, R15)',
    async (first, second) => {
      const key = randomUUID();
      const runsBefore = probe.runs.count('plugins-large');
      const original = await sendCoded(probe.server, 'POST', '/plugins/large', { 'Idempotency-Key': key, 'Accept-Encoding': first });
      const replay = await sendCoded(probe.server, 'POST', '/plugins/large', { 'Idempotency-Key': key, 'Accept-Encoding': second });

      expect(original.status).toBe(201);
      expect(original.headers['idempotency-replayed']).toBeUndefined();
      expect(original.headers['content-encoding']).toBe(codingFor(first));
      expect(replay.status).toBe(201);
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expect(replay.headers['content-encoding']).toBe(codingFor(second));
      expect(replay.headers['content-type']).toBe(original.headers['content-type']);
      if (second !== 'identity') expect(String(replay.headers.vary).toLowerCase()).toContain('accept-encoding');
      expect(replay.decoded.equals(original.decoded)).toBe(true);
      expect(JSON.parse(original.decoded.toString('utf8')).lines).toHaveLength(80);
      expect(probe.runs.count('plugins-large')).toBe(runsBefore + 1);

      // What is stored is the representation before any coding, without the coding's headers (R15).
      const stored = await storedRecord(probe.dataSource, key);
      expect(stored?.body.equals(original.decoded)).toBe(true);
      expect(Object.keys(stored?.headers ?? {})).not.toEqual(expect.arrayContaining(['content-encoding']));
      expect(Object.keys(stored?.headers ?? {})).not.toEqual(expect.arrayContaining(['vary']));
    },
  );
});

import { expect } from '@jest/globals';
import type request from 'supertest';

/** A supertest response. */
export type SentResponse = Awaited<request.Test>;

/** Buffers the response body as it came off the wire, so bodies compare byte for byte. */
export function bytes(test: request.Test): request.Test {
  return test.buffer(true).parse((response, callback) => {
    const stream = response as unknown as NodeJS.ReadableStream;
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => callback(null, Buffer.concat(chunks)));
  });
}

export function bodyBytes(response: SentResponse): Buffer {
  return response.body as Buffer;
}

export function json(response: SentResponse): Record<string, unknown> {
  return JSON.parse(bodyBytes(response).toString('utf8')) as Record<string, unknown>;
}

/** A fresh answer never carries Idempotency-Replayed (R13). */
export function expectFresh(response: SentResponse): void {
  expect(response.headers['idempotency-replayed']).toBeUndefined();
}

/** A replay: same status, content type and length, the same bytes, and Idempotency-Replayed (R9, R13). */
export function expectReplayOf(replay: SentResponse, original: SentResponse): void {
  expect(replay.status).toBe(original.status);
  expect(replay.headers['idempotency-replayed']).toBe('true');
  expect(replay.headers['content-type']).toBe(original.headers['content-type']);
  expect(replay.headers['content-length']).toBe(original.headers['content-length']);
  expect(bodyBytes(replay).equals(bodyBytes(original))).toBe(true);
}

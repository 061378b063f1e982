import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { Sha256Sink } from './sha256-sink.js';

const reference = (...parts: Array<string | Buffer>): string => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
};

describe('Sha256Sink (R7)', () => {
  it('hashes small text fed in pieces like one SHA-256 over the whole text', () => {
    const sink = new Sha256Sink().update('POST').update('\u0000').update('/v1/é');
    expect(sink.digest()).toBe(reference('POST\u0000/v1/é'));
  });

  it('gives the same digest when the text grows past the one-shot limit and is streamed', () => {
    const pieces = Array.from({ length: 5000 }, (_, i) => `{"line":${i},"text":"${'x'.repeat(i % 40)}"},`);
    const sink = new Sha256Sink();
    for (const piece of pieces) sink.update(piece);
    expect(pieces.join('').length).toBeGreaterThan(64 * 1024);
    expect(sink.digest()).toBe(reference(pieces.join('')));
  });

  it('hashes text followed by raw bytes as one stream of bytes', () => {
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    expect(new Sha256Sink().update('bytes\u0000').updateBytes(bytes).digest()).toBe(reference('bytes\u0000', bytes));
  });

  it('hashes nothing as the SHA-256 of the empty input', () => {
    expect(new Sha256Sink().digest()).toBe(reference(''));
  });
});

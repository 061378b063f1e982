import { describe, expect, it } from '@jest/globals';
import { REPLAYED_HEADER } from '../response/response-replay.js';
import { isSuccessStatus, replayedHeader } from './replayed-header.js';

describe('replayedHeader', () => {
  it('documents the header a replay carries, with its only value (R25, R9, R13)', () => {
    expect(Object.keys(replayedHeader)).toEqual([REPLAYED_HEADER]);
    expect(replayedHeader[REPLAYED_HEADER]).toMatchObject({ required: false, schema: { type: 'string', enum: ['true'] } });
  });

  it.each([
    ['200', true],
    ['201', true],
    ['204', true],
    ['2XX', true],
    ['2xx', true],
    ['default', false],
    ['302', false],
    ['404', false],
    ['4XX', false],
  ])('counts status %s as a success: %s (R25)', (status, success) => {
    expect(isSuccessStatus(status)).toBe(success);
  });
});

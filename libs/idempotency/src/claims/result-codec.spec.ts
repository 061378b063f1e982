import { describe, expect, it } from '@jest/globals';
import { isReplayedFailure, jsonResultCodec, type FailureCodec } from './result-codec.js';

class DeclinedError extends Error {}

const declines: FailureCodec = {
  describe: (error) => (error instanceof DeclinedError ? { message: error.message } : undefined),
  revive: (described) => new DeclinedError((described as { message: string }).message),
};

describe('jsonResultCodec: what a replayed GraphQL mutation, message reply or runOnce call gets back (R9, R23)', () => {
  it('returns nested objects, arrays and null as stored, and undefined as null', () => {
    const codec = jsonResultCodec<unknown>();
    const value = { id: 'pay_1', amount: 1999, tags: ['a', null], nested: { deep: { flag: true } }, missing: null };
    expect(codec.decode(codec.encode(value))).toEqual(value);
    expect(codec.decode(codec.encode(undefined))).toBeNull();
  });

  it('returns dates as Date objects, wherever they are: at the root, nested, in arrays', () => {
    const codec = jsonResultCodec<unknown>();
    const at = new Date('2026-11-29T05:00:00.000Z');
    const decoded = codec.decode(codec.encode({ createdAt: at, items: [{ at }, 'text'], at: '2026-11-29T05:00:00.000Z' })) as {
      createdAt: Date;
      items: [{ at: Date }, string];
      at: string;
    };
    expect(decoded.createdAt).toBeInstanceOf(Date);
    expect(decoded.createdAt.getTime()).toBe(at.getTime());
    expect(decoded.items[0].at).toEqual(at);
    expect(decoded.items[1]).toBe('text');
    // A string that looks like a date stays a string: only real dates are revived.
    expect(decoded.at).toBe('2026-11-29T05:00:00.000Z');
    expect(codec.decode(codec.encode(at))).toEqual(at);
  });

  it('stores a failure its transport calls an answer, and throws it again, marked as replayed (R14)', () => {
    const codec = jsonResultCodec<unknown>(declines);
    const stored = codec.encodeFailure(new DeclinedError('card declined'));
    expect(stored).toBeDefined();
    let thrown: unknown;
    try {
      codec.decode(stored!);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DeclinedError);
    expect((thrown as Error).message).toBe('card declined');
    expect(isReplayedFailure(thrown)).toBe(true);
    expect(isReplayedFailure(new DeclinedError('fresh'))).toBe(false);
  });

  it('releases the key for any other failure, and for every failure without a failure codec (R14, R23)', () => {
    expect(jsonResultCodec<unknown>(declines).encodeFailure(new Error('processor down'))).toBeUndefined();
    expect(jsonResultCodec<unknown>().encodeFailure(new DeclinedError('card declined'))).toBeUndefined();
  });
});

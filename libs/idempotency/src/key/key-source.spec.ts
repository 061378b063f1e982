import { describe, expect, it } from '@jest/globals';
import { keySourceProblem, valueAtPath } from './key-source.js';

describe('key sources of GraphQL mutations and message handlers (R23)', () => {
  it('accepts one of header, argument or payload naming something, or a function', () => {
    expect(keySourceProblem({ header: 'x-event-id' })).toBeUndefined();
    expect(keySourceProblem({ argument: 'idempotencyKey' })).toBeUndefined();
    expect(keySourceProblem({ payload: 'meta.eventId' })).toBeUndefined();
    expect(keySourceProblem(() => 'k')).toBeUndefined();
  });

  it.each([['eventId'], [{}], [{ payload: '' }], [{ payload: 1 }], [{ body: 'id' }], [{ header: 'a', argument: 'b' }], [null]])(
    'refuses %j, saying what is allowed',
    (source) => {
      expect(keySourceProblem(source)).toContain('{ payload: string }');
    },
  );

  it('reads a dotted path of a payload, and nothing past a missing or non-object step', () => {
    const payload = { eventId: 'evt_1', meta: { id: 7, nested: { key: 'k' } } };
    expect(valueAtPath(payload, 'eventId')).toBe('evt_1');
    expect(valueAtPath(payload, 'meta.nested.key')).toBe('k');
    expect(valueAtPath(payload, 'meta.id.deeper')).toBeUndefined();
    expect(valueAtPath(payload, 'missing.key')).toBeUndefined();
    expect(valueAtPath('text', 'length')).toBeUndefined();
  });
});

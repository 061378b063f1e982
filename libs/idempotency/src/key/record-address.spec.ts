import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { messageRecord, mutationFieldRecord, routeRecord, runOnceRecord } from './record-address.js';

const sha256 = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;

// R7a: records of different kinds, and values too long for their columns, never share a stored
// address, whatever a client or a caller spells.
describe('record addresses (R7a)', () => {
  it('stores a key longer than its column as its SHA-256, and a literal key spelled as that hash elsewhere (R7a)', () => {
    const longKey = 'k'.repeat(256);
    const hashed = runOnceRecord('jobs', longKey);
    expect(hashed.key).toBe(sha256(longKey));
    // A caller sending the stored form itself must not name the long key's record.
    const literal = runOnceRecord('jobs', sha256(longKey));
    expect(literal.key).not.toBe(hashed.key);
    expect(literal.key).toBe(sha256(sha256(longKey)));
  });

  it('keeps keys up to the column width as they are (R7a)', () => {
    expect(runOnceRecord('jobs', 'k'.repeat(255)).key).toBe('k'.repeat(255));
    expect(routeRecord('acme', 'k'.repeat(255)).key).toBe('k'.repeat(255));
  });

  it('stores an account longer than its column as its SHA-256, and a route account spelled as that hash elsewhere (R7a)', () => {
    const longScope = 's'.repeat(200);
    const hashed = runOnceRecord(longScope, 'key');
    expect(hashed.account).toBe(sha256(`runOnce:${longScope}`));
    const literal = routeRecord(hashed.account, 'key');
    expect(literal.account).not.toBe(hashed.account);
  });

  it("escapes a route account that begins like another kind's namespace, so it never shares their records (R7a)", () => {
    for (const account of ['runOnce:jobs', 'graphql:14:createPayment:acme', 'message:15:payment.capture:', 'http:acme']) {
      const route = routeRecord(account, 'key');
      expect(route.account).toBe(`http:${account}`);
    }
    expect(routeRecord('runOnce:jobs', 'key')).not.toEqual(runOnceRecord('jobs', 'key'));
    expect(routeRecord('graphql:14:createPayment:acme', 'key')).not.toEqual(mutationFieldRecord('acme', 'createPayment', 'key'));
    expect(routeRecord('message:15:payment.capture:', 'key')).not.toEqual(messageRecord('payment.capture', '', 'key'));
    // An escaped account and the route account that spells the escape stay apart too.
    expect(routeRecord('http:runOnce:jobs', 'key')).not.toEqual(routeRecord('runOnce:jobs', 'key'));
  });

  it('keeps ordinary route accounts as they are, so records stored before the namespaces still answer (R7a)', () => {
    expect(routeRecord('acme', 'key')).toEqual({ account: 'acme', key: 'key' });
    expect(routeRecord('', 'key')).toEqual({ account: '', key: 'key' });
  });

  it('keeps message scopes with and without an account apart, and patterns that read as another pair (R7a)', () => {
    expect(messageRecord('p', undefined, 'k')).not.toEqual(messageRecord('p', '', 'k'));
    expect(messageRecord('a:b', 'c', 'k')).not.toEqual(messageRecord('a', 'b:c', 'k'));
    expect(mutationFieldRecord('x', 'a:b', 'k')).not.toEqual(mutationFieldRecord('b:x', 'a', 'k'));
  });
});

import { describe, expect, it } from '@jest/globals';
import { DEFAULT_REDIS_KEY_PREFIX, redisRecordKey } from './redis-idempotency.store.js';

describe('redisRecordKey', () => {
  it('keeps ("a:b", "c") and ("a", "b:c") apart, which a plain separator would join (R5, R6)', () => {
    expect(redisRecordKey('p:', 'a:b', 'c')).not.toBe(redisRecordKey('p:', 'a', 'b:c'));
  });

  it('keeps an account that ends like a length prefix apart from the one it imitates (R5, R6)', () => {
    const pairs: Array<readonly [string, string]> = [
      ['', '3:abc:k'],
      ['3:abc', 'k'],
      ['3', 'abc:k'],
      ['acct', 'k'],
      ['acct:', 'k'],
      ['acct', ':k'],
    ];
    const keys = pairs.map(([account, key]) => redisRecordKey('p:', account, key));
    expect(new Set(keys).size).toBe(pairs.length);
  });

  it('counts the account in UTF-8 bytes, the unit Redis stores, so unicode accounts stay apart (R5)', () => {
    expect(redisRecordKey('p:', 'ключ', 'k')).toBe('p:8:ключ:k');
    expect(redisRecordKey('p:', '🔑', 'k')).toBe('p:4:🔑:k');
    expect(redisRecordKey('p:', 'e\u0301', 'k')).not.toBe(redisRecordKey('p:', '\u00e9', 'k'));
  });

  it('starts every key with the prefix, "idempotency:" by default', () => {
    expect(redisRecordKey(DEFAULT_REDIS_KEY_PREFIX, 'acct_42', 'key-1')).toBe('idempotency:7:acct_42:key-1');
    expect(redisRecordKey('tenant-a/', '', 'key-1')).toBe('tenant-a/0::key-1');
  });
});

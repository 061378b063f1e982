import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { canonicalJson, hashCanonicalJson, writeCanonicalJson } from './canonical-json.js';

const DEPTH = 100_000;

function nestedArrays(depth: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function nestedObjects(depth: number): unknown {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { z: 1, a: value };
  return value;
}

describe('canonicalJson', () => {
  it('gives the same text whatever the order of object keys (R7)', () => {
    expect(canonicalJson({ currency: 'EUR', amount: 4200, customerId: 'cus_1' })).toBe(
      canonicalJson({ customerId: 'cus_1', amount: 4200, currency: 'EUR' }),
    );
    expect(canonicalJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
  });

  it('gives the same text for the same data sent with other whitespace (R7)', () => {
    const compact = JSON.parse('{"amount":4200,"items":[1,2,{"sku":"a"}]}') as unknown;
    const pretty = JSON.parse('{\n  "items" : [ 1 ,\t2, { "sku": "a" } ],\r\n  "amount": 4200\n}\n') as unknown;
    expect(canonicalJson(pretty)).toBe(canonicalJson(compact));
    expect(canonicalJson(pretty)).toBe('{"amount":4200,"items":[1,2,{"sku":"a"}]}');
  });

  it('keeps the order of array items, which is significant (R7)', () => {
    expect(canonicalJson([1, 2, 3])).toBe('[1,2,3]');
    expect(canonicalJson([2, 1, 3])).not.toBe(canonicalJson([1, 2, 3]));
    expect(canonicalJson([{ a: 1 }, { b: 2 }])).not.toBe(canonicalJson([{ b: 2 }, { a: 1 }]));
  });

  it('sorts the keys of nested objects at every level, inside arrays too (R7)', () => {
    const value = { z: { y: { b: 2, a: 1 }, x: [{ d: 4, c: 3 }] }, a: null };
    expect(canonicalJson(value)).toBe('{"a":null,"z":{"x":[{"c":3,"d":4}],"y":{"a":1,"b":2}}}');
  });

  it('drops undefined, function and symbol members of objects like JSON.stringify (R7)', () => {
    const value = { b: undefined, a: 1, f: () => 1, s: Symbol('s'), n: null };
    expect(canonicalJson(value)).toBe('{"a":1,"n":null}');
    expect(canonicalJson({ only: undefined })).toBe('{}');
  });

  it('writes null for undefined, function and symbol items of arrays like JSON.stringify (R7)', () => {
    const value = [undefined, () => 1, Symbol('s'), null, 0];
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
    expect(canonicalJson(value)).toBe('[null,null,null,null,0]');
  });

  it('does not write a stray comma when the first or last member is dropped (R7)', () => {
    expect(canonicalJson({ a: undefined, b: 1, c: undefined, d: 2, e: undefined })).toBe('{"b":1,"d":2}');
  });

  it('writes non-finite numbers as tokens of their own, never as null: -1e400 is not null (R7)', () => {
    expect(canonicalJson([NaN, Infinity, -Infinity])).toBe('[NaN,Infinity,-Infinity]');
    expect(canonicalJson({ processingMs: JSON.parse('-1e400') as number })).not.toBe(canonicalJson({ processingMs: null }));
    expect(canonicalJson(JSON.parse('[1e400]') as unknown)).not.toBe(canonicalJson(['Infinity']));
  });

  it('sorts keys by UTF-16 code unit, not by locale or code point (R7)', () => {
    // Code units: 'Z' 0x5A < 'z' 0x7A < 'é' 0xE9 < '😀' 0xD83D (high surrogate) < 'Ａ' 0xFF21.
    // By code point, '😀' (U+1F600) would come last; by locale, 'é' would sit next to 'e'.
    const value = { 'Ａ': 5, '😀': 4, 'é': 3, z: 2, Z: 1, e: 0 };
    expect(canonicalJson(value)).toBe('{"Z":1,"e":0,"z":2,"é":3,"😀":4,"Ａ":5}');
  });

  it('sorts integer-like keys as strings, unlike the insertion order JSON.stringify keeps (R7)', () => {
    expect(canonicalJson({ 9: 'nine', 10: 'ten', 1: 'one' })).toBe('{"1":"one","10":"ten","9":"nine"}');
  });

  it('escapes keys and strings as JSON.stringify does (R7)', () => {
    const value = { 'a"b': 'line\nbreak \u0001 "quoted" \\ é \u2028', 'a\\b': '' };
    expect(canonicalJson(value)).toBe(JSON.stringify({ 'a"b': value['a"b'], 'a\\b': '' }));
  });

  it('honours toJSON, so a Date is written as its ISO string (R7)', () => {
    const when = new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 6));
    expect(canonicalJson({ when })).toBe('{"when":"2025-01-02T03:04:05.006Z"}');
    expect(canonicalJson([when])).toBe('["2025-01-02T03:04:05.006Z"]');
  });

  it('canonicalises what a custom toJSON returns, and drops a member whose toJSON returns undefined (R7)', () => {
    const money = { toJSON: () => ({ currency: 'EUR', amount: 10 }) };
    const hidden = { toJSON: () => undefined };
    expect(canonicalJson({ price: money, secret: hidden })).toBe('{"price":{"amount":10,"currency":"EUR"}}');
  });

  it('equals JSON.stringify for input whose keys are already sorted (R7)', () => {
    const value = {
      a: [1, -2.5, 1e21, 0.1, -0, true, false, null, 'x', { a: [], b: {} }],
      b: { c: 'é€😀', d: '\u0000\u001f', e: '' },
      c: [[[]], [{}]],
      d: Number.MAX_SAFE_INTEGER,
    };
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  it.each([
    ['a string', 'hello'],
    ['a number', 42],
    ['a boolean', true],
    ['null', null],
  ])('writes %s at the top level as JSON.stringify does (R7)', (_label, value) => {
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  it(`handles arrays nested ${DEPTH} deep without overflowing the stack (R7, any body size)`, () => {
    const text = canonicalJson(nestedArrays(DEPTH));
    expect(text === `${'['.repeat(DEPTH + 1)}${']'.repeat(DEPTH + 1)}`).toBe(true);
  });

  it(`handles objects nested ${DEPTH} deep without overflowing the stack (R7, any body size)`, () => {
    const text = canonicalJson(nestedObjects(DEPTH));
    expect(text === `${'{"a":'.repeat(DEPTH)}{}${',"z":1}'.repeat(DEPTH)}`).toBe(true);
  });

  it('canonicalises a deeply nested body that JSON.parse accepted (R7, any body size)', () => {
    const body = JSON.parse(`${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`) as unknown;
    const hash = createHash('sha256');
    expect(() => hashCanonicalJson(body, hash)).not.toThrow();
    expect(hash.digest('hex')).toBe(createHash('sha256').update(`${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`).digest('hex'));
  });

  it('canonicalises a 5 MB body, key order still ignored (R7, any body size)', () => {
    const sorted = Array.from({ length: 50_000 }, (_, i) => ({
      amount: i,
      currency: 'EUR',
      description: `line item ${i} `.padEnd(60, '.'),
      id: `item_${i}`,
    }));
    const reordered = sorted.map(({ amount, currency, description, id }) => ({ id, description, currency, amount }));
    const expected = JSON.stringify(sorted);
    expect(expected.length).toBeGreaterThan(5_000_000);
    expect(canonicalJson(reordered) === expected).toBe(true);
  });
});

describe('writeCanonicalJson and hashCanonicalJson', () => {
  it('streams exactly the canonical text, so hashing it equals hashing canonicalJson (R7)', () => {
    const value = { b: [1, { d: 'x', c: null }], a: 'é' };
    const chunks: string[] = [];
    writeCanonicalJson(value, (chunk) => chunks.push(chunk));
    expect(chunks.join('')).toBe(canonicalJson(value));

    const streamed = createHash('sha256');
    hashCanonicalJson(value, streamed);
    expect(streamed.digest('hex')).toBe(createHash('sha256').update(canonicalJson(value), 'utf8').digest('hex'));
  });
});

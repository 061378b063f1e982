import { describe, expect, it } from '@jest/globals';
import { canonicalJson } from './canonical-json.js';
import { canonicalJsonText } from './canonical-json-text.js';

const DEPTH = 100_000;

/** What today's parse-then-walk gives: the reference for every document a double holds as written. */
function parsedCanonical(text: string): string {
  return canonicalJson(JSON.parse(text) as unknown);
}

describe('canonicalJsonText', () => {
  it('sorts members and drops whitespace, as canonicalising the parsed value does (R7)', () => {
    const text = '{\n  "meta" : { "b": [1, 2], "a": 1 },\r\n\t"currency": "EUR",\n  "amount": 4200\n}\n';
    expect(canonicalJsonText(text)).toBe('{"amount":4200,"currency":"EUR","meta":{"a":1,"b":[1,2]}}');
    expect(canonicalJsonText(text)).toBe(parsedCanonical(text));
  });

  it.each([
    '{"a":[1,-2.5,1e21,0.1,-0,true,false,null,"x",{"a":[],"b":{}}],"b":{"c":"é€😀","d":"\\u0000\\u001f","e":""},"c":[[[]],[{}]]}',
    '[{"b":1,"a":2},{"d":[{"z":0,"y":1}],"c":null}]',
    '"a string at the top"',
    '42',
    '-0.5e-3',
    'true',
    'null',
    '{"9":"nine","10":"ten","1":"one"}',
    '{"Ａ":5,"😀":4,"é":3,"z":2,"Z":1,"e":0}',
    '{"__proto__":{"polluted":true},"constructor":1}',
    '[1E3,1e+3,1000.0,0.1e4,12345678901234567000,1.7976931348623157e308,5e-324]',
    '{"line\\nbreak":"tab\\there","quote\\"d":"back\\\\slash","slash":"\\/","u2028":"\u2028"}',
  ])('gives the text canonicalising the parsed value gives, for %s (R7)', (text) => {
    expect(canonicalJsonText(text)).toBe(parsedCanonical(text));
  });

  it('compares numbers exactly as written: 2^53+1 is not 2^53, -1e400 is neither null nor -1e401 (R7)', () => {
    expect(canonicalJsonText('{"datastreamId":9007199254740993}')).toBe('{"datastreamId":9007199254740993}');
    expect(canonicalJsonText('{"datastreamId":9007199254740993}')).not.toBe(canonicalJsonText('{"datastreamId":9007199254740992}'));
    expect(canonicalJsonText('{"datastreamId":5,"processingMs":-1e400}')).toBe('{"datastreamId":5,"processingMs":-1e+400}');
    expect(canonicalJsonText('{"processingMs":-1e400}')).not.toBe(canonicalJsonText('{"processingMs":null}'));
    expect(canonicalJsonText('[-1e400]')).not.toBe(canonicalJsonText('[-1e401]'));
    expect(canonicalJsonText('[1e-400]')).not.toBe(canonicalJsonText('[0]'));
  });

  it('writes every spelling of one decimal value alike: 1e3, 1000, 1000.0, 1E+3 (R7)', () => {
    const spellings = ['1e3', '1000', '1000.0', '1E+3', '10000e-1', '1000.000e0'].map((number) => canonicalJsonText(`{"amount":${number}}`));
    expect(new Set(spellings)).toEqual(new Set(['{"amount":1000}']));
  });

  it('writes -0 and 0 alike (R7)', () => {
    expect(canonicalJsonText('[-0,-0.0,0e7,-0E-3]')).toBe('[0,0,0,0]');
  });

  it('handles exponents far beyond a double (R7)', () => {
    expect(canonicalJsonText('[1e999999999,-2.5E-99999999999999999999999,25E99999999999999999999999]')).toBe(
      '[1e+999999999,-2.5e-99999999999999999999999,2.5e+100000000000000000000000]',
    );
  });

  it('resolves a repeated member name as JSON.parse does: the last one wins, wherever it sorts (R7)', () => {
    for (const text of ['{"a":1,"b":2,"a":3}', '{"b":2,"a":1,"a":3}', '{"a":1,"a":2,"a":3}', '{"z":{"x":1,"x":[2]},"a":0}']) {
      expect(canonicalJsonText(text)).toBe(parsedCanonical(text));
    }
    expect(canonicalJsonText('{"a":1,"b":2,"a":3}')).toBe('{"a":3,"b":2}');
    // An escaped spelling of a name is the same name.
    expect(canonicalJsonText('{"a":1,"\\u0061":2}')).toBe('{"a":2}');
  });

  it('decodes escapes, so \\u0041 and A are one value, and writes strings as JSON.stringify does (R7)', () => {
    expect(canonicalJsonText('{"name":"\\u0041"}')).toBe(canonicalJsonText('{"name":"A"}'));
    expect(canonicalJsonText('{"\\u006eame":"A"}')).toBe('{"name":"A"}');
    expect(canonicalJsonText('["\\/", "\\u00e9", "é", "\\u007f"]')).toBe('["/","é","é","\u007f"]');
    expect(canonicalJsonText('["\\u0001\\b\\f\\n\\r\\t"]')).toBe(JSON.stringify(['\u0001\b\f\n\r\t']));
  });

  it('decodes surrogate escapes: a pair is the character, a lone one stays escaped (R7)', () => {
    expect(canonicalJsonText('["\\ud83d\\ude00"]')).toBe('["😀"]');
    expect(canonicalJsonText('["\\uD83D\\uDE00"]')).toBe(canonicalJsonText('["😀"]'));
    expect(canonicalJsonText('["\\ud800"]')).toBe('["\\ud800"]');
    expect(canonicalJsonText('["\\udc00x"]')).toBe(parsedCanonical('["\\udc00x"]'));
    // Sorted by code unit: the high surrogate 0xD83D sorts before 0xFF21.
    expect(canonicalJsonText('{"\\uff21":1,"\\ud83d\\ude00":2}')).toBe('{"😀":2,"Ａ":1}');
  });

  it('drops a leading byte order mark, as body parsers do (R7)', () => {
    expect(canonicalJsonText('\ufeff{"b":1,"a":2}')).toBe('{"a":2,"b":1}');
  });

  it.each([
    '',
    ' ',
    '{',
    '}',
    '[1,]',
    '[,1]',
    '{"a":1,}',
    '{,}',
    '{"a" 1}',
    '{a:1}',
    "{'a':1}",
    '[1 2]',
    '01',
    '-',
    '1.',
    '.5',
    '1e',
    '1e+',
    '+1',
    'NaN',
    'Infinity',
    'tru',
    'nul',
    '"unterminated',
    '"bad \\x escape"',
    '"\\u12"',
    '"raw\ncontrol"',
    '{"a":1}{"b":2}',
    '[1]]',
    '{"a":1}}',
    '[[]',
  ])('refuses %j, which JSON.parse refuses too (R7)', (text) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(canonicalJsonText(text)).toBeUndefined();
  });

  it(`reads arrays and objects nested ${DEPTH} deep without overflowing the stack (R7, any body size)`, () => {
    const arrays = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`;
    expect(canonicalJsonText(arrays) === arrays).toBe(true);
    const objects = `${'{"z":1,"a":'.repeat(DEPTH)}{}${'}'.repeat(DEPTH)}`;
    expect(canonicalJsonText(objects) === `${'{"a":'.repeat(DEPTH)}{}${',"z":1}'.repeat(DEPTH)}`).toBe(true);
  });

  it('canonicalises a 5 MB body, key order still ignored (R7, any body size)', () => {
    const sorted = Array.from({ length: 50_000 }, (_, i) => ({
      amount: i * 1.25,
      currency: 'EUR',
      description: `line item ${i} `.padEnd(60, '.'),
      id: `item_${i}`,
    }));
    const reordered = sorted.map(({ amount, currency, description, id }) => ({ id, description, currency, amount }));
    const expected = JSON.stringify(sorted);
    expect(expected.length).toBeGreaterThan(5_000_000);
    expect(canonicalJsonText(JSON.stringify(reordered, null, 2)) === expected).toBe(true);
  });
});

import { describe, expect, it } from '@jest/globals';
import { normaliseUuid, parseIdempotencyKey, unquoteStructuredString } from './idempotency-key.parser.js';

const UUID = '8e03978e-40d5-43e8-bc93-6894a57f9324';
const UUID_UPPER = UUID.toUpperCase();
const UUID_SIMPLE = UUID.replaceAll('-', '');

/** Every spelling R3 accepts for one UUID, in several cases. */
const SPELLINGS_OF_ONE_UUID = [
  UUID,
  UUID_UPPER,
  '8E03978e-40D5-43e8-BC93-6894a57F9324',
  UUID_SIMPLE,
  UUID_SIMPLE.toUpperCase(),
  `{${UUID}}`,
  `{${UUID_UPPER}}`,
  `urn:uuid:${UUID}`,
  `urn:uuid:${UUID_UPPER}`,
  `URN:UUID:${UUID}`,
];

describe('parseIdempotencyKey with the uuid format', () => {
  it.each(SPELLINGS_OF_ONE_UUID)('normalises %s to the lower-case hyphenated key (R3)', (spelling) => {
    expect(parseIdempotencyKey([spelling], 'uuid')).toEqual({ ok: true, key: UUID });
  });

  it.each(SPELLINGS_OF_ONE_UUID)('accepts %s as a quoted structured-field string meaning the same key (R3)', (spelling) => {
    expect(parseIdempotencyKey([`"${spelling}"`], 'uuid')).toEqual({ ok: true, key: UUID });
  });

  it('ignores the optional whitespace around a field value, as HTTP does (R3)', () => {
    expect(parseIdempotencyKey([`  ${UUID} `], 'uuid')).toEqual({ ok: true, key: UUID });
    expect(parseIdempotencyKey([` "${UUID}" `], 'uuid')).toEqual({ ok: true, key: UUID });
  });

  it.each([
    ['a group one digit short', '8e03978e-40d5-43e8-bc93-6894a57f932'],
    ['a group one digit long', '8e03978e-40d5-43e8-bc93-6894a57f93240'],
    ['groups split 7-5 instead of 8-4', '8e03978-e40d5-43e8-bc93-6894a57f9324'],
    ['a hyphen missing', '8e03978e40d5-43e8-bc93-6894a57f9324'],
    ['an extra hyphen', '8e03978e-40d5-43e8-bc93-6894-a57f9324'],
    ['a non-hex digit', '8e03978e-40d5-43e8-bc93-6894a57f932g'],
    ['31 hex digits', UUID_SIMPLE.slice(1)],
    ['33 hex digits', `${UUID_SIMPLE}0`],
    ['an unclosed brace', `{${UUID}`],
    ['a closing brace only', `${UUID}}`],
    ['doubled braces', `{{${UUID}}}`],
    ['parentheses instead of braces', `(${UUID})`],
    ['a urn prefix other than uuid', `urn:guid:${UUID}`],
    ['a uuid prefix without urn', `uuid:${UUID}`],
    ['an inner space', `${UUID.slice(0, 8)} ${UUID.slice(9)}`],
    ['a non-UUID word', 'order-1234'],
    ['a Unicode look-alike digit', UUID.replace('8', '\uFF18')],
  ])('refuses a near-miss UUID with %s as invalid (R3)', (_label, value) => {
    expect(parseIdempotencyKey([value], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
  });

  it('refuses a value longer than 128 characters as invalid (R3)', () => {
    expect(parseIdempotencyKey([`urn:uuid:${UUID}`.padEnd(129, '0')], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
    expect(parseIdempotencyKey([UUID_SIMPLE.repeat(5)], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
  });
});

describe('normaliseUuid', () => {
  it.each(SPELLINGS_OF_ONE_UUID)('maps %s to the same lower-case hyphenated UUID (R3)', (spelling) => {
    expect(normaliseUuid(spelling)).toBe(UUID);
  });

  it('returns the same key for every spelling, so they are one stored key (R3)', () => {
    expect(new Set(SPELLINGS_OF_ONE_UUID.map(normaliseUuid))).toEqual(new Set([UUID]));
  });

  it('keeps two different UUIDs apart (R3)', () => {
    const other = '8e03978e-40d5-43e8-bc93-6894a57f9325';
    expect(normaliseUuid(other)).toBe(other);
    expect(normaliseUuid(other)).not.toBe(normaliseUuid(UUID));
  });

  it('refuses an input over 128 characters (R3)', () => {
    expect(normaliseUuid(`urn:uuid:${UUID}`.padEnd(129, '0'))).toBeUndefined();
  });

  it('refuses the empty string (R3)', () => {
    expect(normaliseUuid('')).toBeUndefined();
  });
});

describe('parseIdempotencyKey with the token format', () => {
  it('accepts a printable ASCII token such as checkout:<attemptId> unchanged (R3)', () => {
    expect(parseIdempotencyKey(['checkout:att_42/Retry #1'], 'token')).toEqual({ ok: true, key: 'checkout:att_42/Retry #1' });
  });

  it('keeps a token case-sensitive: it is not a UUID and is not lower-cased (R3)', () => {
    expect(parseIdempotencyKey(['Order-ABC'], 'token')).toEqual({ ok: true, key: 'Order-ABC' });
  });

  it('accepts a one-character token (R3)', () => {
    expect(parseIdempotencyKey(['x'], 'token')).toEqual({ ok: true, key: 'x' });
  });

  it('accepts a 255-character token and refuses a 256-character one (R3)', () => {
    const longest = 'k'.repeat(255);
    expect(parseIdempotencyKey([longest], 'token')).toEqual({ ok: true, key: longest });
    expect(parseIdempotencyKey(['k'.repeat(256)], 'token')).toEqual({ ok: false, failure: 'invalid' });
  });

  it('measures the 255-character limit on the unquoted value (R3)', () => {
    const longest = 'k'.repeat(255);
    expect(parseIdempotencyKey([`"${longest}"`], 'token')).toEqual({ ok: true, key: longest });
    expect(parseIdempotencyKey([`"${'k'.repeat(256)}"`], 'token')).toEqual({ ok: false, failure: 'invalid' });
  });

  it.each([
    ['a Latin-1 letter', 'café'],
    ['an emoji', 'order-🛒'],
    ['a non-breaking space', 'order\u00a01'],
  ])('refuses a token containing %s as invalid (R3)', (_label, value) => {
    expect(parseIdempotencyKey([value], 'token')).toEqual({ ok: false, failure: 'invalid' });
  });

  it('accepts a quoted token and the bare token as the same key (R3)', () => {
    expect(parseIdempotencyKey(['"checkout:att_42"'], 'token')).toEqual({ ok: true, key: 'checkout:att_42' });
    expect(parseIdempotencyKey(['checkout:att_42'], 'token')).toEqual({ ok: true, key: 'checkout:att_42' });
  });

  it('unescapes \\" and \\\\ in a quoted token (R3)', () => {
    expect(parseIdempotencyKey(['"say \\"hi\\" C:\\\\tmp"'], 'token')).toEqual({ ok: true, key: 'say "hi" C:\\tmp' });
  });
});

describe('parseIdempotencyKey with a custom validator', () => {
  const startsWithJob = (key: string): boolean => key.startsWith('job-');

  it('accepts a key the validator accepts, unchanged (R3)', () => {
    expect(parseIdempotencyKey(['job-17'], startsWithJob)).toEqual({ ok: true, key: 'job-17' });
  });

  it('refuses a key the validator refuses as invalid (R3)', () => {
    expect(parseIdempotencyKey(['task-17'], startsWithJob)).toEqual({ ok: false, failure: 'invalid' });
  });

  it('gives the validator the unquoted value of a quoted key (R3)', () => {
    const seen: string[] = [];
    const validator = (key: string): boolean => {
      seen.push(key);
      return true;
    };
    expect(parseIdempotencyKey(['"job-\\"17\\""'], validator)).toEqual({ ok: true, key: 'job-"17"' });
    expect(seen).toEqual(['job-"17"']);
  });

  it('refuses control characters even when the validator would accept anything (R4)', () => {
    expect(parseIdempotencyKey(['job-\u000017'], () => true)).toEqual({ ok: false, failure: 'invalid' });
  });

  it('refuses an empty value without asking the validator (R4)', () => {
    let calls = 0;
    const validator = (): boolean => {
      calls++;
      return true;
    };
    expect(parseIdempotencyKey([''], validator)).toEqual({ ok: false, failure: 'invalid' });
    expect(calls).toBe(0);
  });
});

describe('parseIdempotencyKey presence and refusals', () => {
  it('reports a request without the header as missing, not invalid (R2)', () => {
    expect(parseIdempotencyKey([], 'uuid')).toEqual({ ok: false, failure: 'missing' });
    expect(parseIdempotencyKey([], 'token')).toEqual({ ok: false, failure: 'missing' });
  });

  it('refuses two header values as invalid, even when they are equal (R4)', () => {
    expect(parseIdempotencyKey([UUID, UUID], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
    expect(parseIdempotencyKey(['a', 'b'], 'token')).toEqual({ ok: false, failure: 'invalid' });
  });

  it('refuses two header values even if one of them is empty (R4)', () => {
    expect(parseIdempotencyKey([UUID, ''], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
  });

  it.each(['uuid', 'token'] as const)('refuses an empty value as invalid, not missing, in the %s format (R4)', (format) => {
    expect(parseIdempotencyKey([''], format)).toEqual({ ok: false, failure: 'invalid' });
  });

  it.each(['uuid', 'token'] as const)('refuses a whitespace-only value as invalid in the %s format (R4)', (format) => {
    expect(parseIdempotencyKey(['   '], format)).toEqual({ ok: false, failure: 'invalid' });
  });

  it.each(['uuid', 'token'] as const)('refuses an empty quoted string "" as invalid in the %s format (R4)', (format) => {
    expect(parseIdempotencyKey(['""'], format)).toEqual({ ok: false, failure: 'invalid' });
  });

  it.each([
    ['NUL', '\u0000'],
    ['a tab', '\t'],
    ['a line feed', '\n'],
    ['a carriage return', '\r'],
    ['escape', '\u001b'],
    ['DEL', '\u007f'],
    ['the C1 control NEL', '\u0085'],
    ['the C1 control CSI', '\u009b'],
  ])('refuses a value containing %s as invalid (R4)', (_label, control) => {
    expect(parseIdempotencyKey([`${UUID.slice(0, 10)}${control}${UUID.slice(10)}`], 'uuid')).toEqual({
      ok: false,
      failure: 'invalid',
    });
    expect(parseIdempotencyKey([`checkout${control}42`], 'token')).toEqual({ ok: false, failure: 'invalid' });
  });

  it('refuses a control character at the edge of a value rather than trimming it away (R4)', () => {
    expect(parseIdempotencyKey([`${UUID}\u0000`], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
    expect(parseIdempotencyKey([`\u007f${UUID}`], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
    expect(parseIdempotencyKey([`${UUID}\n`], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
  });

  it('refuses a control character inside a quoted string (R4)', () => {
    expect(parseIdempotencyKey(['"checkout\u000042"'], 'token')).toEqual({ ok: false, failure: 'invalid' });
  });

  it.each([
    ['no closing quote', `"${UUID}`],
    ['a lone quote', '"'],
    ['an unescaped quote inside', `"${UUID.slice(0, 8)}"${UUID.slice(8)}"`],
    ['an escape of a letter', `"\\${UUID}"`],
    ['a backslash escaping the closing quote', `"${UUID}\\"`],
    ['text after the closing quote', `"${UUID}"x`],
  ])('refuses a malformed quoted value with %s in every format (R3)', (_label, value) => {
    expect(parseIdempotencyKey([value], 'uuid')).toEqual({ ok: false, failure: 'invalid' });
    expect(parseIdempotencyKey([value], 'token')).toEqual({ ok: false, failure: 'invalid' });
    expect(parseIdempotencyKey([value], () => true)).toEqual({ ok: false, failure: 'invalid' });
  });
});

describe('unquoteStructuredString', () => {
  it('returns a bare value unchanged (R3)', () => {
    expect(unquoteStructuredString(UUID)).toBe(UUID);
    expect(unquoteStructuredString('a\\b')).toBe('a\\b');
  });

  it('strips the quotes of an sf-string (R3)', () => {
    expect(unquoteStructuredString(`"${UUID}"`)).toBe(UUID);
  });

  it('decodes the \\" and \\\\ escapes (R3)', () => {
    expect(unquoteStructuredString('"a\\"b\\\\c"')).toBe('a"b\\c');
    expect(unquoteStructuredString('"\\\\"')).toBe('\\');
  });

  it('returns the empty string for "" (R3)', () => {
    expect(unquoteStructuredString('""')).toBe('');
  });

  it.each([
    ['an unterminated string', '"abc'],
    ['a lone quote', '"'],
    ['an unescaped inner quote', '"a"b"'],
    ['an unknown escape', '"a\\nb"'],
    ['a dangling backslash', '"abc\\"'],
  ])('refuses %s (R3)', (_label, value) => {
    expect(unquoteStructuredString(value)).toBeUndefined();
  });
});

import { describe, expect, it } from '@jest/globals';
import { parseIdempotencyKey } from '../key/idempotency-key.parser.js';
import { keyFormatSchema } from './key-format-schema.js';

describe('keyFormatSchema', () => {
  it('documents the default uuid format as format uuid, with an example the parser accepts (R25, R3)', () => {
    const schema = keyFormatSchema('uuid');
    expect(schema).toMatchObject({ type: 'string', format: 'uuid' });
    expect(parseIdempotencyKey([schema.example as string], 'uuid').ok).toBe(true);
  });

  it('documents a custom validator as a plain string: its rule cannot be written down (R25, R3)', () => {
    expect(keyFormatSchema(() => true)).toEqual({ type: 'string' });
  });

  // Leading and trailing spaces and quotes are left out: the parser trims and unquotes before it checks.
  const TOKEN_SAMPLES = ['checkout:7f3c9a21', 'a', 'with space inside', '~!@#$%^&*()_+{}|:<>?', 'x'.repeat(255), 'x'.repeat(256), 'tab\there', 'del\u007f', 'caf\u00e9', 'line\nbreak', 'emoji\u{1F600}'];

  it.each(TOKEN_SAMPLES)('documents token keys with a pattern and length that agree with the parser on %j (R25, R3)', (sample) => {
    const schema = keyFormatSchema('token');
    const documented = sample.length >= (schema.minLength ?? 0) && sample.length <= (schema.maxLength ?? Infinity) && new RegExp(schema.pattern!).test(sample);
    expect(documented).toBe(parseIdempotencyKey([sample], 'token').ok);
  });

});

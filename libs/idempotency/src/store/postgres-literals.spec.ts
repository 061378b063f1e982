import { describe, expect, it } from '@jest/globals';
import { withPostgresLiterals } from './postgres-literals.js';

describe('withPostgresLiterals', () => {
  it('writes each $n as its parameter, $10 as the tenth and not as $1 followed by 0', () => {
    const params = Array.from({ length: 10 }, (_, index) => index + 1);
    expect(withPostgresLiterals('SELECT $1, $10, $2', params)).toBe('SELECT 1, 10, 2');
  });

  it("doubles quotes, and writes a text with a backslash as an escape string whatever standard_conforming_strings says", () => {
    expect(withPostgresLiterals('SELECT $1', ["o'brien"])).toBe("SELECT 'o''brien'");
    expect(withPostgresLiterals('SELECT $1', ["a\\'b"])).toBe("SELECT  E'a\\\\''b'");
  });

  it('writes bytes as hex through decode, and null, bigints and booleans as themselves', () => {
    expect(withPostgresLiterals('SELECT $1, $2, $3, $4', [Buffer.from([0, 255, 39]), null, 2n ** 63n - 1n, true])).toBe(
      "SELECT decode('00ff27', 'hex'), NULL, 9223372036854775807, TRUE",
    );
  });

  it('refuses what cannot be a literal: a NUL in text, a non-finite number, an object, a missing parameter', () => {
    expect(() => withPostgresLiterals('SELECT $1', ['a\u0000b'])).toThrow(/U\+0000/);
    expect(() => withPostgresLiterals('SELECT $1', [Number.NaN])).toThrow(/NaN/);
    expect(() => withPostgresLiterals('SELECT $1', [{}])).toThrow(/object/);
    expect(() => withPostgresLiterals('SELECT $2', ['only one'])).toThrow(/\$2 has no parameter/);
  });
});

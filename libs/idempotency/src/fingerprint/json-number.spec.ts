import { describe, expect, it } from '@jest/globals';
import { canonicalJsonNumber } from './json-number.js';

describe('canonicalJsonNumber', () => {
  it.each([
    ['1000', '1000'],
    ['1e3', '1000'],
    ['1E3', '1000'],
    ['1E+3', '1000'],
    ['1000.0', '1000'],
    ['10000e-1', '1000'],
    ['0.001e6', '1000'],
    ['-4200', '-4200'],
    ['-2.50', '-2.5'],
    ['0.1', '0.1'],
    ['0.000001', '0.000001'],
    ['0.0000001', '1e-7'],
    ['1e21', '1e+21'],
    ['123456789012345678901', '123456789012345678901'],
    ['1234567890123456789012', '1.234567890123456789012e+21'],
    ['1.5e-7', '1.5e-7'],
    ['12.5e1', '125'],
    ['-1E-0', '-1'],
  ])('writes %s as %s, Number::toString of its exact value (R7)', (literal, expected) => {
    expect(canonicalJsonNumber(literal)).toBe(expected);
  });

  it.each(['0', '-0', '0.0', '-0.000', '0e5', '-0E-999999999999999999999', '0.0e+0'])('writes the zero %s as 0 (R7)', (literal) => {
    expect(canonicalJsonNumber(literal)).toBe('0');
  });

  it('keeps integers beyond 2^53 exact: 2^53+1 is not 2^53 (R7)', () => {
    expect(canonicalJsonNumber('9007199254740993')).toBe('9007199254740993');
    expect(canonicalJsonNumber('9007199254740992')).toBe('9007199254740992');
    expect(canonicalJsonNumber('-9007199254740993')).toBe('-9007199254740993');
    expect(canonicalJsonNumber('12345678901234567890123456789')).toBe('1.2345678901234567890123456789e+28');
    expect(canonicalJsonNumber('12345678901234567890123456789')).not.toBe(canonicalJsonNumber('12345678901234567890123456788'));
  });

  it('keeps numbers beyond a double finite and apart: 1e400 is neither null nor 1e401 (R7)', () => {
    expect(canonicalJsonNumber('1e400')).toBe('1e+400');
    expect(canonicalJsonNumber('-1e400')).toBe('-1e+400');
    expect(canonicalJsonNumber('1e401')).toBe('1e+401');
    expect(canonicalJsonNumber('1e-400')).toBe('1e-400');
    expect(canonicalJsonNumber('2.5e-400')).toBe('2.5e-400');
  });

  it('keeps digits a double would round away (R7)', () => {
    expect(canonicalJsonNumber('0.1000000000000000055511151231257827')).toBe('0.1000000000000000055511151231257827');
    expect(canonicalJsonNumber('1.00000000000000000001')).not.toBe(canonicalJsonNumber('1'));
  });

  it('handles exponents far beyond a double, and written with many leading zeros (R7)', () => {
    expect(canonicalJsonNumber('1e999999999')).toBe('1e+999999999');
    expect(canonicalJsonNumber('1e99999999999999999999999')).toBe('1e+99999999999999999999999');
    expect(canonicalJsonNumber('-1.5e-99999999999999999999999')).toBe('-1.5e-99999999999999999999999');
    expect(canonicalJsonNumber('-0.15e-99999999999999999999999')).toBe('-1.5e-100000000000000000000000');
    expect(canonicalJsonNumber('10e99999999999999999999999')).toBe('1e+100000000000000000000000');
    expect(canonicalJsonNumber('1e0000000000000000000000003')).toBe('1000');
    expect(canonicalJsonNumber('1000e-00000000000000000000003')).toBe('1');
  });

  it('moves the exponent by the digits on either side of the point (R7)', () => {
    expect(canonicalJsonNumber('123.456e2')).toBe('12345.6');
    expect(canonicalJsonNumber('0.00123e3')).toBe('1.23');
    expect(canonicalJsonNumber('123456e-8')).toBe('0.00123456');
    expect(canonicalJsonNumber('123456e-12')).toBe('1.23456e-7');
  });

  it('agrees with JSON.stringify of the parsed number for every literal a double holds as written (R7)', () => {
    // Literals written the way JavaScript writes them are exactly what a double holds.
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const samples: number[] = [0, -1, 1, 0.5, 1e21, 1e-7, 5e-324, Number.MAX_VALUE, -Number.MIN_VALUE, 2 ** 53, 123e-20];
    for (let i = 0; i < 2000; i++) {
      const magnitude = 10 ** Math.floor(random() * 60 - 30);
      samples.push((random() - 0.5) * magnitude, Math.round((random() - 0.5) * 1e6), Math.fround(random() * 1000));
    }
    for (const value of samples) {
      const written = JSON.stringify(value);
      expect([written, canonicalJsonNumber(written)]).toEqual([written, written]);
      // Other spellings of the same decimal value too.
      const exponential = value.toExponential();
      expect([exponential, canonicalJsonNumber(exponential.replace('e+', 'E'))]).toEqual([exponential, JSON.stringify(Number(exponential))]);
    }
  });
});

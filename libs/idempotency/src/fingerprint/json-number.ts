// Exponents with up to this many characters (sign included) are exact in a double's integer range.
const SMALL_EXPONENT_CHARS = 15;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The canonical text of a JSON number literal (R7): ECMAScript's Number::toString applied to the
 * exact decimal value written, never to the nearest double. `1e3`, `1000`, `1000.0` and `1E+3`
 * are one value and `-0` is `0`, as with doubles; a literal a double holds as written gives
 * exactly `JSON.stringify(JSON.parse(literal))`, while `9007199254740993` stays itself and
 * `1e400` becomes `1e+400` (a double would make them `9007199254740992` and `null`). Exponents
 * of any size are handled (`1e999999999999999999`). The literal must match JSON's number grammar.
 */
export function canonicalJsonNumber(literal: string): string {
  const negative = literal.charCodeAt(0) === 0x2d;
  let index = negative ? 1 : 0;
  const integerStart = index;
  while (index < literal.length && isDigit(literal.charCodeAt(index))) index++;
  const integerDigits = literal.slice(integerStart, index);
  let fractionDigits = '';
  if (literal.charCodeAt(index) === 0x2e) {
    const fractionStart = ++index;
    while (index < literal.length && isDigit(literal.charCodeAt(index))) index++;
    fractionDigits = literal.slice(fractionStart, index);
  }
  // What is left is the exponent, `e` or `E` and its optionally signed digits.
  const exponent = index < literal.length ? literal.slice(index + 1) : '0';

  const digits = integerDigits + fractionDigits;
  let first = 0;
  while (first < digits.length && digits.charCodeAt(first) === 0x30) first++;
  if (first === digits.length) return '0';
  let end = digits.length;
  while (digits.charCodeAt(end - 1) === 0x30) end--;
  // value = 0.<significant> × 10^pointAt: ECMAScript's s, k and n.
  const significant = digits.slice(first, end);
  const pointAt = addExponent(integerDigits.length - first, exponent);
  return (negative ? '-' : '') + numberToString(significant, pointAt);
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function addExponent(base: number, exponent: string): number | bigint {
  if (exponent.length <= SMALL_EXPONENT_CHARS) return base + Number(exponent);
  const sum = BigInt(base) + BigInt(exponent);
  return sum >= -MAX_SAFE && sum <= MAX_SAFE ? Number(sum) : sum;
}

// Number::toString (ECMA-262 6.1.6.1.20) for radix 10, from k significant digits s and n.
function numberToString(s: string, n: number | bigint): string {
  const k = s.length;
  if (typeof n === 'number') {
    if (k <= n && n <= 21) return s + '0'.repeat(n - k);
    if (0 < n && n <= 21) return `${s.slice(0, n)}.${s.slice(n)}`;
    if (-6 < n && n <= 0) return `0.${'0'.repeat(-n)}${s}`;
  }
  const e = typeof n === 'number' ? n - 1 : n - 1n;
  const exponent = e < 0 ? `e${e}` : `e+${e}`;
  return k === 1 ? s + exponent : `${s[0]}.${s.slice(1)}${exponent}`;
}

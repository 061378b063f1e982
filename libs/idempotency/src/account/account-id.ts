/**
 * An account id as text, exactly: strings as they are, numbers and bigints in their decimal form,
 * ObjectId-like values through `toHexString()`, other objects through their own `toString()`.
 * `undefined` for "no account" (`null`, `undefined`). Throws a `TypeError` saying why for a value
 * that names no account exactly: an empty string, a non-finite number, a plain object, a
 * function, a symbol, a boolean. Two ids that mean one account (`42` and `'42'`) give one text.
 */
export function accountIdText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  const text = textOf(value);
  if (text === '') throw new TypeError('it is empty');
  return text;
}

function textOf(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} is not a finite number`);
      return String(value);
    case 'object':
      return objectText(value as object);
    default:
      throw new TypeError(`a ${typeof value} is not an account id`);
  }
}

function objectText(value: object): string {
  const withHex = value as { toHexString?: unknown };
  if (typeof withHex.toHexString === 'function') return checkedText((withHex.toHexString as () => unknown).call(value), 'toHexString()');
  // Object.prototype.toString would give every plain object the same "[object Object]".
  if (typeof value.toString === 'function' && value.toString !== Object.prototype.toString && !Array.isArray(value)) {
    return checkedText(value.toString(), 'toString()');
  }
  throw new TypeError('an object without its own toString() or toHexString() is not an account id');
}

function checkedText(text: unknown, method: string): string {
  if (typeof text !== 'string') throw new TypeError(`its ${method} did not return a string`);
  return text;
}

type Frame =
  | { kind: 'array'; items: readonly unknown[]; next: number }
  | { kind: 'object'; source: Record<string, unknown>; keys: string[]; next: number; wroteMember: boolean };

/**
 * Feeds the canonical JSON text of `value` into `sink` piece by piece: object keys sorted by code
 * unit, no insignificant whitespace, members that JSON.stringify would drop dropped the same way,
 * and a non-finite number written as `Infinity`, `-Infinity` or `NaN`, never as null.
 * It walks with an explicit stack, not recursion, so a deeply nested body (which JSON.parse accepts)
 * cannot overflow the call stack and turn a client's request into a 500; and it never holds the
 * whole text in memory.
 */
export function writeCanonicalJson(value: unknown, sink: (chunk: string) => void): void {
  const stack: Frame[] = [];
  const open = (next: unknown): void => {
    const frame = openValue(toJsonValue(next), sink);
    if (frame) stack.push(frame);
  };
  open(value);

  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.kind === 'array') {
      if (top.next === top.items.length) {
        sink(']');
        stack.pop();
        continue;
      }
      if (top.next > 0) sink(',');
      open(top.items[top.next++]);
      continue;
    }

    const name = nextSerializableMember(top);
    if (name === undefined) {
      sink('}');
      stack.pop();
      continue;
    }
    sink(`${top.wroteMember ? ',' : ''}${JSON.stringify(name)}:`);
    top.wroteMember = true;
    open(top.source[name]);
  }
}

/** The canonical JSON text as one string: for tests and small values. */
export function canonicalJson(value: unknown): string {
  let text = '';
  writeCanonicalJson(value, (chunk) => (text += chunk));
  return text;
}

// Pieces are gathered up to this size before each hash update: one native call per piece would
// cost more than the hashing for the small bodies most requests have.
const HASH_BATCH_CHARS = 64 * 1024;

/** What canonical JSON can be hashed into: a `node:crypto` Hash, or anything with its `update`. */
export interface TextHashSink {
  update(text: string, encoding: 'utf8'): unknown;
}

/** Streams canonical JSON into a hash, holding at most about 64 K characters of it at a time. */
export function hashCanonicalJson(value: unknown, hash: TextHashSink): void {
  let pending = '';
  writeCanonicalJson(value, (chunk) => {
    pending += chunk;
    if (pending.length >= HASH_BATCH_CHARS) {
      hash.update(pending, 'utf8');
      pending = '';
    }
  });
  if (pending.length > 0) hash.update(pending, 'utf8');
}

function nextSerializableMember(frame: Extract<Frame, { kind: 'object' }>): string | undefined {
  while (frame.next < frame.keys.length) {
    const name = frame.keys[frame.next++];
    if (!isDroppedMember(toJsonValue(frame.source[name]))) return name;
  }
  return undefined;
}

// JSON.stringify leaves these out of objects (and writes null for them inside arrays).
function isDroppedMember(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}

function openValue(value: unknown, sink: (chunk: string) => void): Frame | undefined {
  if (value === null || isDroppedMember(value)) {
    sink('null');
    return undefined;
  }
  if (Array.isArray(value)) {
    sink('[');
    return { kind: 'array', items: value, next: 0 };
  }
  if (typeof value === 'object') {
    sink('{');
    const source = value as Record<string, unknown>;
    return { kind: 'object', source, keys: Object.keys(source).sort(), next: 0, wroteMember: false };
  }
  if (typeof value === 'bigint') {
    sink(value.toString());
    return undefined;
  }
  // JSON.stringify writes null for these: a body holding -1e400 would match one holding null (R7).
  // `Infinity`, `-Infinity` and `NaN` are no JSON, so they match no other value.
  if (typeof value === 'number' && !Number.isFinite(value)) {
    sink(String(value));
    return undefined;
  }
  sink(JSON.stringify(value));
  return undefined;
}

function toJsonValue(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return (value as { toJSON: () => unknown }).toJSON();
  }
  return value;
}

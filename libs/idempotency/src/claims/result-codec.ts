import type { StoredResponse } from '../store/idempotency-store.js';

/** How a transport stores the result of a unit of work, and hands it back to a later call. */
export interface ResultCodec<T> {
  /** What is stored for a result the work returned. */
  encode(value: T): StoredResponse;
  /** What is stored for a failure that is the answer (a declined card), or undefined to release the key. */
  encodeFailure(error: unknown): StoredResponse | undefined;
  /** The stored result; a stored failure is thrown again. */
  decode(stored: StoredResponse): T;
}

/** How a transport stores the failures that are answers rather than accidents. */
export interface FailureCodec {
  /** A JSON-ready description of the failure to store, or undefined when it releases the key. */
  describe(error: unknown): object | undefined;
  /** The error a replay throws, from what `describe` gave. */
  revive(described: object): Error;
}

// Errors thrown again from a stored failure: a transport tells a replayed failure from a fresh one.
const replayedFailures = new WeakSet<object>();

/** Whether `error` is a stored failure thrown again to a later call, rather than a failure of this one. */
export function isReplayedFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && replayedFailures.has(error);
}

type Path = readonly (string | number)[];

/** The stored form: `value` as JSON, with the paths of its dates, which JSON turns into strings. */
interface StoredValue {
  readonly value?: unknown;
  readonly dates?: readonly Path[];
  readonly failure?: object;
}

const STORED_STATUS = 200;
const FAILURE_STATUS = 422;
const CONTENT_TYPE = { 'content-type': 'application/json' };

/**
 * Stores results as JSON that keeps what handlers commonly return: nested objects, arrays, null
 * (and undefined as null), and dates, which come back as `Date` objects. Other class instances
 * come back as plain objects, as `JSON.stringify` leaves them. Failures release the key unless
 * `failures` describes them.
 */
export function jsonResultCodec<T>(failures?: FailureCodec): ResultCodec<T> {
  return {
    encode: (value) => storedBody(STORED_STATUS, { value: value === undefined ? null : value, ...datesOf(value) }),
    encodeFailure: (error) => {
      const described = failures?.describe(error);
      return described ? storedBody(FAILURE_STATUS, { failure: described }) : undefined;
    },
    decode: (stored) => {
      const parsed = JSON.parse(stored.body.toString('utf8')) as StoredValue;
      if (parsed.failure) {
        if (!failures) throw new Error('nestjs-idempotency: a stored failure without a failure codec');
        const revived = failures.revive(parsed.failure);
        replayedFailures.add(revived);
        throw revived;
      }
      return reviveDates(parsed.value ?? null, parsed.dates ?? []) as T;
    },
  };
}

function storedBody(status: number, stored: StoredValue): StoredResponse {
  return { status, headers: CONTENT_TYPE, body: Buffer.from(JSON.stringify(stored), 'utf8') };
}

function datesOf(value: unknown): { dates?: Path[] } {
  const dates: Path[] = [];
  collectDates(value, [], dates, new Set());
  return dates.length > 0 ? { dates } : {};
}

function collectDates(value: unknown, path: (string | number)[], dates: Path[], seen: Set<object>): void {
  if (value instanceof Date) {
    dates.push([...path]);
    return;
  }
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  // What JSON.stringify would write through toJSON is not walked: it is not this object's fields.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return;
  seen.add(value);
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((item, index) => [index, item]) : Object.entries(value);
  for (const [name, item] of entries) {
    path.push(name);
    collectDates(item, path, dates, seen);
    path.pop();
  }
  seen.delete(value);
}

function reviveDates(value: unknown, dates: readonly Path[]): unknown {
  let root = value;
  for (const path of dates) {
    if (path.length === 0) {
      root = new Date(root as string);
      continue;
    }
    let holder = root as Record<string | number, unknown>;
    for (const name of path.slice(0, -1)) holder = holder[name] as Record<string | number, unknown>;
    const last = path[path.length - 1]!;
    holder[last] = new Date(holder[last] as string);
  }
  return root;
}

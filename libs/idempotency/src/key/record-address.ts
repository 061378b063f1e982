import { createHash } from 'node:crypto';

/**
 * Where one idempotency record is stored: its `account` and `idempotency_key` columns, whose
 * unique index decides every race (R6).
 */
export interface RecordAddress {
  readonly account: string;
  readonly key: string;
}

// The columns' widths (see the migration).
const MAX_STORED_ACCOUNT_LENGTH = 191;
const MAX_STORED_KEY_LENGTH = 255;
const HASHED = 'sha256:';

// Records of every kind share one table: each kind but routes owns a prefix of the account column
// (R7a). Route accounts are the application's own ids, stored as they are so that records written
// before these namespaces existed keep answering; one that begins like another kind's namespace
// (or like a hashed value, or this escape itself) is stored behind the escape instead.
const ROUTE_ESCAPE = 'http:';
const RESERVED_PREFIXES = [ROUTE_ESCAPE, HASHED, 'graphql:', 'message:', 'runOnce:'];

/** An HTTP route's record: the resolved account ('' for the anonymous scope) and the client's key. */
export function routeRecord(account: string, key: string): RecordAddress {
  const escaped = RESERVED_PREFIXES.some((prefix) => account.startsWith(prefix)) ? `${ROUTE_ESCAPE}${account}` : account;
  return address(escaped, key);
}

/**
 * One idempotent field of a GraphQL operation: the client's key, scoped by the field's response
 * name (an operation with two aliased mutations keeps two records) and the account.
 */
export function mutationFieldRecord(account: string, responseName: string, key: string): RecordAddress {
  return address(`graphql:${lengthPrefixed(responseName)}${account}`, key);
}

/**
 * A message's record: its pattern, and the payload's account when the handler names one (two
 * tenants' events with the same id are two events). `undefined` and '' stay apart.
 */
export function messageRecord(pattern: string, payloadAccount: string | undefined, key: string): RecordAddress {
  const scope = `message:${lengthPrefixed(pattern)}`;
  return address(payloadAccount === undefined ? scope.slice(0, -1) : `${scope}${payloadAccount}`, key);
}

/** A `runOnce` unit of work: its scope and key. */
export function runOnceRecord(scope: string, key: string): RecordAddress {
  return address(`runOnce:${scope}`, key);
}

/** `<length>:<text>:`, so that no text and what follows it can read as another pair. */
function lengthPrefixed(text: string): string {
  return `${text.length}:${text}:`;
}

function address(account: string, key: string): RecordAddress {
  return { account: fitted(account, MAX_STORED_ACCOUNT_LENGTH), key: fitted(key, MAX_STORED_KEY_LENGTH) };
}

/**
 * The value as stored: as it is, or, past the column's width, its SHA-256, so that a long value is
 * still exact and never truncated into another. A value that itself looks hashed is hashed too,
 * so no client can name a hashed record by sending its stored form.
 */
function fitted(value: string, width: number): string {
  if (value.length <= width && !value.startsWith(HASHED)) return value;
  return `${HASHED}${createHash('sha256').update(value).digest('hex')}`;
}

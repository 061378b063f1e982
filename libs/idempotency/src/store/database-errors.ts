import type { AtomicInterruption } from './idempotency-store.js';

// MySQL/MariaDB ER_LOCK_DEADLOCK: a deadlock, or on Galera a certification conflict with a
// transaction that another node committed first (at a statement or at commit).
const MYSQL_DEADLOCK = 1213;
// ER_LOCK_WAIT_TIMEOUT: with the claim's zero lock wait, another transaction holds the key's row.
const MYSQL_LOCK_WAIT_TIMEOUT = 1205;
// PostgreSQL division_by_zero: how its atomic completion says it stored nothing (sql-atomic-statements.ts).
const POSTGRES_DIVISION_BY_ZERO = '22012';
// PostgreSQL serialization_failure and deadlock_detected.
const POSTGRES_LOST_RACE = new Set(['40001', '40P01']);

// The server went away or will not serve this session: shutdown, a killed connection, a Galera
// node that left the primary component (ER_UNKNOWN_COM_ERROR "WSREP has not yet prepared node"),
// lost connections as mysql2 and pg report them.
const MYSQL_GONE_ERRNOS = new Set([1047, 1053, 1927, 2006, 2013]);
const POSTGRES_GONE_CODES = /^(08|57P0)/;
const SOCKET_GONE_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);

interface DriverErrorFields {
  errno?: unknown;
  code?: unknown;
  message?: unknown;
  driverError?: DriverErrorFields;
}

function fieldsOf(error: unknown): { errno: unknown; code: unknown; message: string } {
  const outer = (error ?? {}) as DriverErrorFields;
  const inner = outer.driverError ?? outer;
  return { errno: inner.errno ?? outer.errno, code: inner.code ?? outer.code, message: String(inner.message ?? outer.message ?? '') };
}

/** Whether another transaction holds the key's row, so a claim that must not wait failed at once. */
export function isLockConflict(error: unknown): boolean {
  const { errno } = fieldsOf(error);
  return errno === MYSQL_DEADLOCK || errno === MYSQL_LOCK_WAIT_TIMEOUT;
}

/** Whether the database rolled the statement's transaction back for a concurrent one that won. */
export function isLostRace(error: unknown): boolean {
  const { errno, code } = fieldsOf(error);
  return errno === MYSQL_DEADLOCK || (typeof code === 'string' && POSTGRES_LOST_RACE.has(code));
}

/**
 * Whether PostgreSQL's atomic completion found no claim of this transaction to store the response
 * on: it divides by the rows it stored, so storing none fails the script's first statement, the
 * server skips the rest of the script (its COMMIT), and the transaction can only roll back, the
 * handler's writes with it.
 */
export function isFencedCompletion(error: unknown): boolean {
  return fieldsOf(error).code === POSTGRES_DIVISION_BY_ZERO;
}

/** Whether the statement failed because the connection or the server is gone. */
export function isConnectionLost(error: unknown): boolean {
  const { errno, code, message } = fieldsOf(error);
  if (typeof errno === 'number' && MYSQL_GONE_ERRNOS.has(errno)) return true;
  if (typeof code === 'string' && (SOCKET_GONE_CODES.has(code) || POSTGRES_GONE_CODES.test(code))) return true;
  // pg reports a socket that closed under a query by message only.
  return /Connection terminated|connection is closed|Can't add new command when connection is in closed state/i.test(message);
}

/** What a failed statement says about the atomic transaction it ran in, if anything. */
export function interruptionOf(error: unknown): AtomicInterruption | undefined {
  if (isLostRace(error)) return 'lost_race';
  if (isConnectionLost(error)) return 'unavailable';
  return undefined;
}

import { createHash } from 'node:crypto';
import type { Claim, ClaimRequest, FoundRecord, StoredResponse } from './idempotency-store.js';
import type { SqlDialect } from './sql-dialect.js';

/** A record as the store's statements return it. */
export interface RecordRow {
  owner_token: string;
  fingerprint: string;
  state: string;
  response_status: number | string | null;
  response_headers: string | null;
  response_body: Buffer | Uint8Array | string | null;
  lease_remaining_ms: number | string;
  ttl_remaining_ms: number | string;
}

/** Every statement the TypeORM store sends, written once per DataSource for its SQL family. */
export interface Statements {
  readonly dialect: SqlDialect;
  readonly claim: string;
  readonly read: string;
  readonly complete: string;
  readonly release: string;
  readonly renew: string;
  readonly purge: string;
  /**
   * The claim inside an atomic transaction (R22a), which must never queue behind another
   * transaction's uncommitted claim of the same key: MySQL/MariaDB give up on the row lock at once
   * (an error the unit reads as "locked"); PostgreSQL first takes the key's advisory lock without
   * waiting and inserts nothing when another transaction holds it (no row returned).
   */
  readonly atomicClaim: string;
  /** Its parameters: PostgreSQL's lead with the advisory locks and the idle limit. */
  atomicClaimParams(request: ClaimRequest, ownerToken: string): unknown[];
  /** PostgreSQL: whether a key's advisory lock, and a request's, are held (by pg_locks columns). */
  readonly lockProbe: string;
  /**
   * MySQL family: the session variable that ends a session idle for that many seconds inside a
   * transaction that wrote (MariaDB), or idle at all (MySQL 8, which has no write-only limit).
   */
  readonly idleWriteLimitVariable: string;
}

const RECORD_COLUMNS = 'owner_token, fingerprint, state, response_status, response_headers, response_body';

/** The parameters of `claim`, in the order of its placeholders. */
export function claimParams(request: ClaimRequest, ownerToken: string): unknown[] {
  return [request.account, request.key, request.fingerprint, ownerToken, request.route.slice(0, 255), request.leaseMs, request.ttlMs];
}

export function completeParams(claim: Claim, response: StoredResponse, ttlMs: number): unknown[] {
  const headers = JSON.stringify(response.headers);
  return [response.status, headers, response.body, ttlMs, claim.account, claim.key, claim.ownerToken];
}

/**
 * PostgreSQL advisory lock ids of an atomic claim. The key lock lets one transaction at a time claim
 * a key; the request lock, held with it, tells a retry whether the claim in flight is its own
 * request's (R11) or another's (R10). Both are held until the transaction ends, so a crashed or
 * fenced owner frees them with its claim.
 */
export function advisoryLockIds(request: Pick<ClaimRequest, 'account' | 'key' | 'fingerprint'>): { key: bigint; request: bigint } {
  return {
    key: lockIdOf('key', request.account, request.key),
    request: lockIdOf('request', request.account, request.key, request.fingerprint),
  };
}

// 64 bits of SHA-256: two different keys share a lock id with odds of one in 2^64 per pair.
function lockIdOf(...parts: string[]): bigint {
  return createHash('sha256').update(parts.join('\u0000')).digest().readBigInt64BE(0);
}

/** How pg_locks shows a bigint advisory lock: its high and low 32 bits, unsigned. */
export function pgLocksColumnsOf(lockId: bigint): [string, string] {
  const unsigned = BigInt.asUintN(64, lockId);
  return [String(unsigned >> 32n), String(unsigned & 0xffffffffn)];
}

export function buildStatements(dialect: SqlDialect, mariaDb: boolean): Statements {
  const { table, nowMs: now } = dialect;
  const p = (column: string): string => dialect.proposed(column);
  // Inside the conflict clause the proposed row's created_at is the database's now: naming it
  // instead of repeating the clock expression keeps the statement short to send and to parse.
  const claimNow = p('created_at');
  // A completed record past its ttl, or an in-flight claim whose owner stopped renewing its lease.
  // A dead claim is taken over by a retry of the same request only (another body gets 422 until the
  // ttl has passed too), so that a key never silently changes meaning while its first use is recent.
  const e = (column: string): string => dialect.existing(column);
  const takeover =
    `(${e('state')} = 'completed' AND ${e('expires_at')} <= ${claimNow}) OR ` +
    `(${e('state')} = 'in_flight' AND ${e('lease_expires_at')} <= ${claimNow} AND ` +
    `(${e('fingerprint')} = ${p('fingerprint')} OR ${e('expires_at')} <= ${claimNow}))`;
  const won = dialect.won(takeover);
  const ifWon = (column: string, value: string): string => `${column} = CASE WHEN ${won} THEN ${value} ELSE ${e(column)} END`;
  const columns = '(account, idempotency_key, fingerprint, state, owner_token, route, lease_expires_at, expires_at, created_at)';
  const values = `?, ?, ?, 'in_flight', ?, ?, ${now} + ?, ${now} + ?, ${now}`;
  const onConflict =
    `${dialect.onConflict} ` +
    [
      // First: MySQL's later assignments test whether this one took the owner token.
      `owner_token = CASE WHEN ${takeover} THEN ${p('owner_token')} ELSE ${e('owner_token')} END`,
      ifWon('expires_at', p('expires_at')),
      ifWon('fingerprint', p('fingerprint')),
      ifWon('state', "'in_flight'"),
      ifWon('route', p('route')),
      ifWon('lease_expires_at', p('lease_expires_at')),
      ifWon('created_at', p('created_at')),
      ifWon('response_status', 'NULL'),
      ifWon('response_headers', 'NULL'),
      ifWon('response_body', 'NULL'),
    ].join(', ');
  const remaining = `lease_expires_at - ${now} AS lease_remaining_ms, expires_at - ${now} AS ttl_remaining_ms`;
  const returning = dialect.returning ? ` RETURNING ${RECORD_COLUMNS}, ${remaining}` : '';
  const upsert = `INSERT INTO ${table} ${columns} VALUES (${values}) ${onConflict}${returning}`;
  const byOwner = `account = ? AND idempotency_key = ? AND owner_token = ? AND state = 'in_flight'`;
  const sql = dialect.placeholders;
  const atomic = atomicClaimOf(dialect, mariaDb, { table, columns, values, onConflict, returning, upsert });
  return {
    dialect,
    claim: sql(upsert),
    read: sql(`SELECT ${RECORD_COLUMNS}, ${remaining} FROM ${table} WHERE account = ? AND idempotency_key = ?`),
    complete: sql(
      `UPDATE ${table} SET state = 'completed', response_status = ?, response_headers = ?, response_body = ?, ` +
        `expires_at = ${now} + ?, lease_expires_at = ${now} WHERE ${byOwner}`,
    ),
    release: sql(`DELETE FROM ${table} WHERE ${byOwner}`),
    renew: sql(`UPDATE ${table} SET lease_expires_at = ${now} + ? WHERE ${byOwner}`),
    purge: sql(dialect.purgeBatch(`expires_at <= ${now} AND (state = 'completed' OR lease_expires_at <= ${now})`)),
    atomicClaim: sql(atomic.sql),
    atomicClaimParams: atomic.params,
    lockProbe: sql(
      'SELECT COALESCE(BOOL_OR(classid = ?::oid AND objid = ?::oid), false) AS key_held, ' +
        'COALESCE(BOOL_OR(classid = ?::oid AND objid = ?::oid), false) AS same_request FROM pg_locks ' +
        "WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ),
    idleWriteLimitVariable: mariaDb ? 'idle_write_transaction_timeout' : 'wait_timeout',
  };
}

interface ClaimParts {
  readonly table: string;
  readonly columns: string;
  readonly values: string;
  readonly onConflict: string;
  readonly returning: string;
  readonly upsert: string;
}

function atomicClaimOf(
  dialect: SqlDialect,
  mariaDb: boolean,
  parts: ClaimParts,
): { sql: string; params: (request: ClaimRequest, ownerToken: string) => unknown[] } {
  if (dialect.family === 'postgres') {
    // The request lock first, then the key lock: whoever holds the key lock already holds its
    // request lock, so a retry reading pg_locks never sees the one without the other. The idle limit
    // is set for this transaction only, in the same statement (no round trip of its own).
    const sql =
      'WITH claim_lock AS (SELECT CASE WHEN pg_try_advisory_xact_lock(?::bigint) THEN pg_try_advisory_xact_lock(?::bigint) ' +
      "ELSE false END AS held, set_config('idle_in_transaction_session_timeout', ?, true) AS idle_limit) " +
      `INSERT INTO ${parts.table} ${parts.columns} SELECT ${parts.values} FROM claim_lock WHERE claim_lock.held ` +
      `${parts.onConflict}${parts.returning}`;
    return {
      sql,
      params: (request, ownerToken) => {
        const locks = advisoryLockIds(request);
        return [String(locks.request), String(locks.key), String(Math.max(1, request.leaseMs)), ...claimParams(request, ownerToken)];
      },
    };
  }
  if (dialect.family === 'mysql') {
    // MariaDB takes a lock wait of 0 for one statement; MySQL 8's shortest is 1 s, set by a hint.
    const sql = mariaDb
      ? `SET STATEMENT innodb_lock_wait_timeout = 0 FOR ${parts.upsert}`
      : parts.upsert.replace(/^INSERT /, 'INSERT /*+ SET_VAR(innodb_lock_wait_timeout = 1) */ ');
    return { sql, params: claimParams };
  }
  // SQLite has no atomic mode (the store refuses it at start-up); the plain claim keeps the shape.
  return { sql: parts.upsert, params: claimParams };
}

export function foundRecordOf(row: RecordRow): FoundRecord {
  if (row.state === 'completed') {
    return {
      status: 'completed',
      fingerprint: row.fingerprint,
      response: {
        status: Number(row.response_status),
        headers: row.response_headers ? (JSON.parse(row.response_headers) as Record<string, string | string[]>) : {},
        body: toBuffer(row.response_body),
      },
      expiresInMs: Number(row.ttl_remaining_ms),
    };
  }
  return { status: 'in_flight', fingerprint: row.fingerprint, leaseRemainingMs: Number(row.lease_remaining_ms) };
}

function toBuffer(value: RecordRow['response_body']): Buffer {
  if (value === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(value)) return value;
  return typeof value === 'string' ? Buffer.from(value, 'binary') : Buffer.from(value);
}

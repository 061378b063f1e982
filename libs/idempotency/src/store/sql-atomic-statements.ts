import { createHash } from 'node:crypto';
import type { ClaimRequest } from './idempotency-store.js';
import type { SqlDialect } from './sql-dialect.js';
import { withSettings } from './statement-settings.js';

/** The claim statement's pieces, for the atomic transaction's variants of it. */
export interface ClaimParts {
  readonly table: string;
  readonly columns: string;
  readonly values: string;
  readonly onConflict: string;
  readonly returning: string;
  readonly upsert: string;
  /** Settings every statement of the store runs with (`SET STATEMENT ... FOR`), on MariaDB only. */
  readonly settings: readonly string[];
  /** The plain claim's parameters, in the order of its placeholders. */
  params(request: ClaimRequest, ownerToken: string): unknown[];
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

/** One statement of an atomic transaction, with its parameters. */
export interface AtomicStep {
  readonly sql: string;
  params(request: ClaimRequest, ownerToken: string): unknown[];
}

/**
 * The statements of one atomic request's transaction (R22a), as its family sends them. Every
 * family limits how long the owner's session may idle inside the transaction to the lease (so the
 * database fences a frozen owner) and leaves the session as it found it once the transaction ends:
 * its connection goes back to the application's pool. MariaDB runs each phase as one compound
 * statement (`BEGIN NOT ATOMIC ... END`, one round trip, no multi-statement flag needed);
 * PostgreSQL sends each phase as one script of statements (one round trip); MySQL 8 sends them one
 * by one. PostgreSQL's idle limit lasts for the transaction only.
 */
export interface AtomicStatements {
  /**
   * `script`: `open`, `complete` and `release` are scripts of several statements, sent as one simple
   * query with their parameters written in as literals (postgres-literals.ts); otherwise each is
   * one statement with bound parameters.
   */
  readonly sentAs: 'statement' | 'script';
  /**
   * Sent in order: open the transaction, limit the session's idle time, claim the key without
   * waiting for another transaction's claim. The claim's row is the first row of the last result
   * that has one (MySQL 8 reads it back after the upsert).
   */
  readonly open: readonly AtomicStep[];
  /**
   * Stores the response, fenced on the owner token (the parameters of `complete`). Where
   * `completeEnds`, the same statement commits when it stored and rolls back otherwise, answering
   * one row `{ completed }` (PostgreSQL's fails instead of storing nothing, and its COMMIT is then
   * skipped: see `isFencedCompletion`); otherwise the unit ends the transaction by what it affected.
   */
  readonly complete: string;
  readonly completeEnds: boolean;
  /** Deletes the claim (account, key, owner token); where `releaseEnds`, commits too. */
  readonly release: string;
  readonly releaseEnds: boolean;
  readonly commit: string;
  readonly rollback: string;
  /** Sent after `commit` or `rollback` (not after an ending statement): restores the session's own idle limit. */
  readonly afterEnd: string | undefined;
}

// A session variable of the connection's own: the idle limit it had before the transaction.
const SAVED_IDLE_LIMIT = '@nestjs_idempotency_idle_limit';

const leaseSeconds = (request: ClaimRequest): number => Math.max(1, Math.ceil(request.leaseMs / 1000));

/**
 * MariaDB 10.5+: three compound statements in all. Its idle limit ends a session idle that long
 * inside a transaction that wrote; the session's own value is saved first and put back in the
 * statement that ends the transaction.
 */
export function mariaDbAtomicStatements(parts: ClaimParts, complete: string, release: string): AtomicStatements {
  const variable = 'idle_write_transaction_timeout';
  const restore = `SET SESSION ${variable} = ${SAVED_IDLE_LIMIT};`;
  return {
    sentAs: 'statement',
    open: [
      {
        // The lease is sent as a parameter: mysql2 binds numbers as doubles, which a system variable refuses.
        sql:
          `BEGIN NOT ATOMIC SET ${SAVED_IDLE_LIMIT} = @@SESSION.${variable}, SESSION ${variable} = CAST(? AS UNSIGNED); ` +
          `START TRANSACTION; ${withSettings(['innodb_lock_wait_timeout = 0', ...parts.settings], parts.upsert)}; END`,
        params: (request, ownerToken) => [leaseSeconds(request), ...parts.params(request, ownerToken)],
      },
    ],
    complete:
      `BEGIN NOT ATOMIC DECLARE stored INT DEFAULT 0; ${complete}; SET stored = ROW_COUNT(); ` +
      `IF stored > 0 THEN COMMIT; ELSE ROLLBACK; END IF; ${restore} SELECT stored AS completed; END`,
    completeEnds: true,
    release: `BEGIN NOT ATOMIC ${release}; COMMIT; ${restore} END`,
    releaseEnds: true,
    commit: `BEGIN NOT ATOMIC COMMIT; ${restore} END`,
    rollback: `BEGIN NOT ATOMIC ROLLBACK; ${restore} END`,
    afterEnd: undefined,
  };
}

/**
 * MySQL 8 (and MariaDB when told to behave as it, the store's `withoutReturning` test seam): no
 * compound statements outside stored programs and no RETURNING, so each step is a statement of its
 * own. MySQL's shortest lock wait is 1 s, set by a hint; its idle limit (`wait_timeout` there:
 * MySQL has no write-only one; MariaDB's own when it runs this path) is saved and restored.
 */
export function mysqlAtomicStatements(parts: ClaimParts, complete: string, release: string, read: string, mariaDb: boolean): AtomicStatements {
  const variable = mariaDb ? 'idle_write_transaction_timeout' : 'wait_timeout';
  const claim = mariaDb
    ? withSettings(['innodb_lock_wait_timeout = 0', ...parts.settings], parts.upsert)
    : parts.upsert.replace(/^INSERT /, 'INSERT /*+ SET_VAR(innodb_lock_wait_timeout = 1) */ ');
  return {
    sentAs: 'statement',
    open: [
      {
        sql: `SET ${SAVED_IDLE_LIMIT} = @@SESSION.${variable}, SESSION ${variable} = CAST(? AS UNSIGNED)`,
        params: (request) => [leaseSeconds(request)],
      },
      { sql: 'START TRANSACTION', params: () => [] },
      { sql: claim, params: parts.params },
      { sql: read, params: (request) => [request.account, request.key] },
    ],
    complete,
    completeEnds: false,
    release,
    releaseEnds: false,
    commit: 'COMMIT',
    rollback: 'ROLLBACK',
    afterEnd: `SET SESSION ${variable} = ${SAVED_IDLE_LIMIT}`,
  };
}

/**
 * PostgreSQL: the claim first takes, without waiting, the request's and then the key's advisory
 * locks (transaction-scoped) and inserts nothing when another transaction holds the key. The idle
 * limit is set for this transaction only (`set_config(..., true)`), in the claim statement itself.
 * Each phase is one script, so one round trip: `START TRANSACTION` with the claim, the completion
 * with `COMMIT`, the release with `COMMIT`.
 */
export function postgresAtomicStatements(dialect: SqlDialect, parts: ClaimParts, complete: string, release: string): AtomicStatements {
  // The request lock first, then the key lock: whoever holds the key lock already holds its
  // request lock, so a retry reading pg_locks never sees the one without the other.
  const claim =
    'WITH claim_lock AS (SELECT CASE WHEN pg_try_advisory_xact_lock(?::bigint) THEN pg_try_advisory_xact_lock(?::bigint) ' +
    "ELSE false END AS held, set_config('idle_in_transaction_session_timeout', ?, true) AS idle_limit) " +
    `INSERT INTO ${parts.table} ${parts.columns} SELECT ${parts.values} FROM claim_lock WHERE claim_lock.held ` +
    `${parts.onConflict}${parts.returning}`;
  return {
    sentAs: 'script',
    open: [
      {
        sql: `START TRANSACTION; ${dialect.placeholders(claim)}`,
        params: (request, ownerToken) => {
          const locks = advisoryLockIds(request);
          return [String(locks.request), String(locks.key), String(Math.max(1, request.leaseMs)), ...parts.params(request, ownerToken)];
        },
      },
    ],
    // Divided by the rows it stored: none fails the statement, and the server skips the COMMIT after it.
    complete: `WITH stored AS (${complete} RETURNING 1) SELECT 1 / COUNT(*) AS completed FROM stored; COMMIT`,
    completeEnds: true,
    release: `${release}; COMMIT`,
    releaseEnds: true,
    commit: 'COMMIT',
    rollback: 'ROLLBACK',
    afterEnd: undefined,
  };
}

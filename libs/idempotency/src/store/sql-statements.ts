import type { Claim, ClaimRequest, FoundRecord, StoredResponse } from './idempotency-store.js';
import {
  mariaDbAtomicStatements,
  mysqlAtomicStatements,
  postgresAtomicStatements,
  type AtomicStatements,
  type ClaimParts,
} from './sql-atomic-statements.js';
import type { SqlDialect } from './sql-dialect.js';
import { GALERA_STATEMENT_SETTINGS, withSettings } from './statement-settings.js';

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
  /** The statements of an atomic request's transaction (R22a). */
  readonly atomic: AtomicStatements;
  /** PostgreSQL: whether a key's advisory lock, and a request's, are held (by pg_locks columns). */
  readonly lockProbe: string;
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

/** What the MySQL-family server can do, learnt from its version. */
export interface MysqlServer {
  readonly mariaDb: boolean;
  /** MariaDB's compound statements (`BEGIN NOT ATOMIC`) for the atomic transaction's phases. */
  readonly compound: boolean;
  /** A Galera cluster node (`wsrep_on`): every statement first waits until the node has applied what the cluster committed. */
  readonly galera: boolean;
}

const SINGLE_SERVER: MysqlServer = { mariaDb: false, compound: false, galera: false };

export function buildStatements(dialect: SqlDialect, server: MysqlServer = SINGLE_SERVER): Statements {
  const { table, nowMs: now } = dialect;
  const settings = server.galera ? [GALERA_STATEMENT_SETTINGS] : [];
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
  const sql = (statement: string): string => dialect.placeholders(withSettings(settings, statement));
  const read = sql(`SELECT ${RECORD_COLUMNS}, ${remaining} FROM ${table} WHERE account = ? AND idempotency_key = ?`);
  const complete = sql(
    `UPDATE ${table} SET state = 'completed', response_status = ?, response_headers = ?, response_body = ?, ` +
      `expires_at = ${now} + ?, lease_expires_at = ${now} WHERE ${byOwner}`,
  );
  const release = sql(`DELETE FROM ${table} WHERE ${byOwner}`);
  const parts: ClaimParts = { table, columns, values, onConflict, returning, upsert, settings, params: claimParams };
  return {
    dialect,
    claim: sql(upsert),
    read,
    complete,
    release,
    renew: sql(`UPDATE ${table} SET lease_expires_at = ${now} + ? WHERE ${byOwner}`),
    purge: sql(dialect.purgeBatch(`expires_at <= ${now} AND (state = 'completed' OR lease_expires_at <= ${now})`)),
    atomic: atomicStatementsOf(dialect, server, parts, { complete, release, read }),
    lockProbe: sql(
      'SELECT COALESCE(BOOL_OR(classid = ?::oid AND objid = ?::oid), false) AS key_held, ' +
        'COALESCE(BOOL_OR(classid = ?::oid AND objid = ?::oid), false) AS same_request FROM pg_locks ' +
        "WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ),
  };
}


function atomicStatementsOf(
  dialect: SqlDialect,
  server: MysqlServer,
  parts: ClaimParts,
  plain: { complete: string; release: string; read: string },
): AtomicStatements {
  if (dialect.family === 'postgres') return postgresAtomicStatements(dialect, parts, plain.complete, plain.release);
  if (server.compound) return mariaDbAtomicStatements(parts, plain.complete, plain.release);
  // SQLite has no atomic mode (the store refuses it at start-up); MySQL's shape keeps the type whole.
  return mysqlAtomicStatements(parts, plain.complete, plain.release, plain.read, server.mariaDb);
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

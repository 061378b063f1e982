import { randomUUID } from 'node:crypto';
import { QueryFailedError, type DataSource, type QueryRunner } from 'typeorm';
import type {
  AtomicUnit,
  Claim,
  ClaimOutcome,
  ClaimRequest,
  FoundRecord,
  IdempotencyStore,
  StoredResponse,
} from './idempotency-store.js';
import { sqlDialect, sqlFamilyOf, type SqlDialect, type SqlFamily } from './sql-dialect.js';
import { DEFAULT_STORE_TIMEOUT_MS, StoreTimeoutError } from './store-timeout.js';

interface RecordRow {
  owner_token: string;
  fingerprint: string;
  state: string;
  response_status: number | string | null;
  response_headers: string | null;
  response_body: Buffer | Uint8Array | string | null;
  lease_remaining_ms: number | string;
  ttl_remaining_ms: number | string;
}

interface Statements {
  readonly dialect: SqlDialect;
  readonly claim: string;
  readonly read: string;
  readonly complete: string;
  readonly release: string;
  readonly renew: string;
  readonly purge: string;
}

/** Settings of the TypeORM store. */
export interface TypeOrmIdempotencyStoreOptions {
  /**
   * Every store call settles within this many ms (R18): a database that accepts connections but never
   * answers makes the call fail instead of hanging the request. Default 5000.
   */
  timeoutMs?: number;
  /** Test seam: claim as on MySQL 8 (no RETURNING) even on MariaDB. */
  withoutReturning?: boolean;
}


const RECORD_COLUMNS = 'owner_token, fingerprint, state, response_status, response_headers, response_body';

/**
 * The production store: one table, one row per (account, key), on MySQL/MariaDB, PostgreSQL or SQLite through
 * a TypeORM DataSource. A claim is a single upsert statement whose outcome the database decides
 * under the primary key's row lock, so any number of app instances can share the table.
 */
export class TypeOrmIdempotencyStore implements IdempotencyStore {
  private statements?: Promise<Statements>;
  private readonly family: SqlFamily;
  private readonly timeoutMs: number;
  private readonly forceWithoutReturning: boolean;

  constructor(
    private readonly dataSource: DataSource,
    options: TypeOrmIdempotencyStoreOptions = {},
  ) {
    this.family = sqlFamilyOf(dataSource.options.type);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    this.forceWithoutReturning = options.withoutReturning ?? false;
  }

  async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    const sql = await this.prepared();
    const ownerToken = randomUUID();
    const params = [
      request.account,
      request.key,
      request.fingerprint,
      ownerToken,
      request.route.slice(0, 255),
      request.leaseMs,
      request.ttlMs,
    ];
    const row = sql.dialect.returning
      ? (await this.run(sql.claim, params)).records[0]
      : await this.claimWithoutReturning(sql, params, request);
    if (!row) throw new Error('nestjs-idempotency: the claim statement returned no row');
    if (row.owner_token === ownerToken) {
      const { account, key, fingerprint } = request;
      return { status: 'claimed', claim: { account, key, fingerprint, ownerToken } };
    }
    return foundRecordOf(row);
  }

  async inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    const sql = await this.prepared();
    const row = (await this.run(sql.read, [account, key])).records[0];
    if (!row) return undefined;
    if (row.state === 'completed' && Number(row.ttl_remaining_ms) <= 0) return undefined;
    return foundRecordOf(row);
  }

  async complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const sql = await this.prepared();
    const { affected } = await this.run(sql.complete, completeParams(claim, response, ttlMs));
    return affected > 0;
  }

  async release(claim: Claim): Promise<boolean> {
    const sql = await this.prepared();
    const { affected } = await this.run(sql.release, [claim.account, claim.key, claim.ownerToken]);
    return affected > 0;
  }

  async renew(claim: Claim, leaseMs: number): Promise<boolean> {
    const sql = await this.prepared();
    const { affected } = await this.run(sql.renew, [leaseMs, claim.account, claim.key, claim.ownerToken]);
    return affected > 0;
  }

  atomicUnsupportedReason(): string | undefined {
    if (this.family !== 'sqlite') return undefined;
    return (
      'atomic mode needs MySQL, MariaDB or PostgreSQL. A better-sqlite3 DataSource has one connection that TypeORM ' +
      "shares among all queries, so a transaction held open across one handler would take in every other request's statements."
    );
  }

  async beginAtomic(): Promise<AtomicUnit> {
    const reason = this.atomicUnsupportedReason();
    if (reason) throw new Error(`nestjs-idempotency: ${reason}`);
    const sql = await this.prepared();
    const runner = this.dataSource.createQueryRunner();
    try {
      await this.within(runner, runner.startTransaction());
    } catch (error) {
      abandon(runner);
      await runner.release().catch(() => undefined);
      throw error;
    }
    let finished = false;
    const finish = async (commit: boolean): Promise<void> => {
      if (finished) return;
      finished = true;
      try {
        await this.within(runner, commit ? runner.commitTransaction() : runner.rollbackTransaction());
      } finally {
        await runner.release().catch(() => undefined);
      }
    };
    return {
      manager: runner.manager,
      commitWith: async (claim, response, ttlMs) => {
        try {
          const completed = await this.within(runner, this.execute(runner, sql.complete, completeParams(claim, response, ttlMs)));
          await finish(completed.affected > 0);
          return completed.affected > 0;
        } catch (error) {
          await finish(false).catch(() => undefined);
          throw error;
        }
      },
      commit: () => finish(true),
      rollback: () => finish(false),
    };
  }

  async purgeExpired(limit: number): Promise<number> {
    const sql = await this.prepared();
    // Not prepared: LIMIT takes an integer, and the binary protocol would send the number as a double.
    return (await this.run(sql.purge, [limit], false)).affected;
  }

  // MySQL has no INSERT ... RETURNING: the upsert and the read share one transaction so that the
  // row read back is the one this upsert left, under the row lock the upsert took.
  private claimWithoutReturning(sql: Statements, params: unknown[], request: ClaimRequest): Promise<RecordRow | undefined> {
    return this.withRunner(async (runner) => {
      await runner.startTransaction();
      try {
        await runner.query(sql.claim, params);
        const result = await runner.query(sql.read, [request.account, request.key], true);
        await runner.commitTransaction();
        return (result.records as RecordRow[] | undefined)?.[0];
      } catch (error) {
        if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
        throw error;
      }
    });
  }

  private run(
    sql: string,
    params: unknown[],
    prepared = true,
  ): Promise<{ records: RecordRow[]; affected: number }> {
    return this.withRunner((runner) => this.execute(runner, sql, params, prepared));
  }

  private async execute(
    runner: QueryRunner,
    sql: string,
    params: unknown[],
    prepared = true,
  ): Promise<{ records: RecordRow[]; affected: number }> {
    if (prepared && this.family === 'mysql') return executePrepared(this.dataSource, runner, sql, params);
    const result = await runner.query(sql, params, true);
    return { records: (result.records as RecordRow[] | undefined) ?? [], affected: result.affected ?? 0 };
  }

  /**
   * Runs `work` on a connection of its own and settles within the timeout. On timeout the connection
   * is destroyed rather than returned to the pool: a query stuck on a dead or silent server would
   * otherwise keep its pool slot forever, and once every slot is stuck the store could never recover
   * by itself when the database comes back.
   */
  private async withRunner<T>(work: (runner: QueryRunner) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    const working = work(runner);
    try {
      return await this.within(runner, working);
    } finally {
      // After a timeout this waits for nothing: the late result, if any, still releases the runner.
      void working.catch(() => undefined).finally(() => runner.release().catch(() => undefined));
    }
  }

  /** Settles with `working`, or fails after the timeout and destroys the runner's connection. */
  private async within<T>(runner: QueryRunner, working: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abandon(runner);
        reject(new StoreTimeoutError(this.timeoutMs));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([working, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private prepared(): Promise<Statements> {
    this.statements ??= this.prepare().catch((error: unknown) => {
      // A database that was down at the first request must not poison every later one (R18).
      this.statements = undefined;
      throw error;
    });
    return this.statements;
  }

  private async prepare(): Promise<Statements> {
    let returning = false;
    if (this.family === 'mysql' && !this.forceWithoutReturning) {
      const rows = (await this.withRunner((runner) => runner.query('SELECT VERSION() AS version'))) as Array<{
        version: string;
      }>;
      returning = mariaDbHasReturning(rows[0]?.version ?? '');
    }
    return buildStatements(sqlDialect(this.family, returning));
  }
}

/** MariaDB has had INSERT ... RETURNING since 10.5; MySQL has none. */
export function mariaDbHasReturning(version: string): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!match || !/mariadb/i.test(version)) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 10 || (major === 10 && minor >= 5);
}

function buildStatements(dialect: SqlDialect): Statements {
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
  const upsert =
    `INSERT INTO ${table} (account, idempotency_key, fingerprint, state, owner_token, route, lease_expires_at, expires_at, created_at) ` +
    `VALUES (?, ?, ?, 'in_flight', ?, ?, ${now} + ?, ${now} + ?, ${now}) ` +
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
  const byOwner = `account = ? AND idempotency_key = ? AND owner_token = ? AND state = 'in_flight'`;
  const sql = dialect.placeholders;
  return {
    dialect,
    claim: sql(dialect.returning ? `${upsert} RETURNING ${RECORD_COLUMNS}, ${remaining}` : upsert),
    read: sql(`SELECT ${RECORD_COLUMNS}, ${remaining} FROM ${table} WHERE account = ? AND idempotency_key = ?`),
    complete: sql(
      `UPDATE ${table} SET state = 'completed', response_status = ?, response_headers = ?, response_body = ?, ` +
        `expires_at = ${now} + ?, lease_expires_at = ${now} WHERE ${byOwner}`,
    ),
    release: sql(`DELETE FROM ${table} WHERE ${byOwner}`),
    renew: sql(`UPDATE ${table} SET lease_expires_at = ${now} + ? WHERE ${byOwner}`),
    purge: sql(dialect.purgeBatch(`expires_at <= ${now} AND (state = 'completed' OR lease_expires_at <= ${now})`)),
  };
}

interface MysqlConnection {
  execute(sql: string, params: unknown[], done: (error: Error | null, result: unknown) => void): void;
}

/**
 * MySQL only: the store's statements run as server-side prepared statements on the driver's own
 * connection (mysql2 caches them per connection), so the server parses the long claim statement
 * once per connection instead of once per request. Each is still reported to the DataSource's
 * logger, as TypeORM's own queries are.
 */
async function executePrepared(
  dataSource: DataSource,
  runner: QueryRunner,
  sql: string,
  params: unknown[],
): Promise<{ records: RecordRow[]; affected: number }> {
  const connection = (await runner.connect()) as MysqlConnection;
  dataSource.logger.logQuery(sql, params, runner);
  const raw = await new Promise<unknown>((resolve, reject) =>
    connection.execute(sql, params, (error, result) => {
      if (!error) return resolve(result);
      dataSource.logger.logQueryError(error, sql, params, runner);
      reject(new QueryFailedError(sql, params, error));
    }),
  );
  return Array.isArray(raw)
    ? { records: raw as RecordRow[], affected: 0 }
    : { records: [], affected: (raw as { affectedRows?: number }).affectedRows ?? 0 };
}

function completeParams(claim: Claim, response: StoredResponse, ttlMs: number): unknown[] {
  const headers = JSON.stringify(response.headers);
  return [response.status, headers, response.body, ttlMs, claim.account, claim.key, claim.ownerToken];
}

function abandon(runner: QueryRunner): void {
  const connection = (runner as unknown as { databaseConnection?: { destroy?: () => void } }).databaseConnection;
  connection?.destroy?.();
}

function foundRecordOf(row: RecordRow): FoundRecord {
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

import { randomUUID } from 'node:crypto';
import { QueryFailedError, type DataSource, type QueryRunner } from 'typeorm';
import type { AtomicUnit, Claim, ClaimOutcome, ClaimRequest, FoundRecord, IdempotencyStore, StoredResponse } from './idempotency-store.js';
import { SqlAtomicUnit, type SqlResult, type SqlUnitContext } from './sql-atomic-unit.js';
import { sqlDialect, sqlFamilyOf, type SqlFamily } from './sql-dialect.js';
import { buildStatements, claimParams, completeParams, foundRecordOf, type RecordRow, type Statements } from './sql-statements.js';
import { DEFAULT_STORE_TIMEOUT_MS, StoreTimeoutError } from './store-timeout.js';

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
    const params = claimParams(request, ownerToken);
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

  beginAtomic(): AtomicUnit {
    const reason = this.atomicUnsupportedReason();
    if (reason) throw new Error(`nestjs-idempotency: ${reason}`);
    return new SqlAtomicUnit(this.unitContext);
  }

  // What every atomic unit borrows: statements prepared on first use, this store's timeout.
  private readonly unitContext: SqlUnitContext = {
    statements: () => this.prepared(),
    createRunner: () => this.dataSource.createQueryRunner(),
    execute: (runner, sql, params) => this.execute(runner, sql, params),
    within: (runner, working) => this.within(runner, working),
    withRunner: (work) => this.withRunner(work),
    discard: (runner) => abandon(runner),
  };

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
  ): Promise<SqlResult> {
    return this.withRunner((runner) => this.execute(runner, sql, params, prepared));
  }

  private async execute(
    runner: QueryRunner,
    sql: string,
    params: unknown[],
    prepared = true,
  ): Promise<SqlResult> {
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
    let mariaDb = false;
    if (this.family === 'mysql') {
      const rows = (await this.withRunner((runner) => runner.query('SELECT VERSION() AS version'))) as Array<{
        version: string;
      }>;
      const version = rows[0]?.version ?? '';
      mariaDb = /mariadb/i.test(version);
      returning = !this.forceWithoutReturning && mariaDbHasReturning(version);
    }
    return buildStatements(sqlDialect(this.family, returning), mariaDb);
  }
}

/** MariaDB has had INSERT ... RETURNING since 10.5; MySQL has none. */
export function mariaDbHasReturning(version: string): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!match || !/mariadb/i.test(version)) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 10 || (major === 10 && minor >= 5);
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
): Promise<SqlResult> {
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

function abandon(runner: QueryRunner): void {
  const connection = (runner as unknown as { databaseConnection?: { destroy?: () => void } }).databaseConnection;
  connection?.destroy?.();
}

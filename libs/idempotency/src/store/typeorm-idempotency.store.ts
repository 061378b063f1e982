import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { QueryFailedError, type DataSource, type QueryRunner } from 'typeorm';
import type { AtomicUnit, Claim, ClaimOutcome, ClaimRequest, FoundRecord, IdempotencyStore, StoredResponse } from './idempotency-store.js';
import { isLostRace } from './database-errors.js';
import { SqlAtomicUnit, type SqlResult, type SqlUnitContext } from './sql-atomic-unit.js';
import { sqlDialect, sqlFamilyOf, type SqlFamily } from './sql-dialect.js';
import { buildStatements, claimParams, completeParams, foundRecordOf, type MysqlServer, type RecordRow, type Statements } from './sql-statements.js';
import { DEFAULT_STORE_TIMEOUT_MS, StoreTimeoutError } from './store-timeout.js';
import { withPostgresLiterals } from './postgres-literals.js';

/** Settings of the TypeORM store. */
export interface TypeOrmIdempotencyStoreOptions {
  /**
   * Every store call settles within this many ms (R18): a database that accepts connections but never
   * answers makes the call fail instead of hanging the request. Default 5000.
   */
  timeoutMs?: number;
  /** Test seam: behave as on MySQL 8 (no RETURNING, no compound statements) even on MariaDB. */
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
    if (this.family === 'postgres' && !(dataSource.options as { connectTimeoutMS?: number }).connectTimeoutMS) {
      new Logger('Idempotency').warn(
        'the PostgreSQL DataSource has no connectTimeoutMS: a connection opened while the network is silent waits forever ' +
          'and holds its pool slot, so the store cannot come back by itself after such an outage (R18). Set connectTimeoutMS ' +
          '(e.g. 5000) in the DataSource options.',
      );
    }
  }

  async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    const sql = await this.prepared();
    const ownerToken = randomUUID();
    const params = claimParams(request, ownerToken);
    const row = await retriedOnLostRace(() =>
      sql.dialect.returning ? this.run(sql.claim, params).then((result) => result.records[0]) : this.claimWithoutReturning(sql, params, request),
    );
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
    connect: (runner) => this.connect(runner),
    execute: (runner, sql, params) => this.execute(runner, sql, params),
    executeScript: (runner, sql, params) => this.executeScript(runner, sql, params),
    within: (runner, working) => this.within(runner, working),
    withRunner: (work) => this.withRunner(work),
    discard: (runner) => abandon(runner),
  };

  async purgeExpired(limit: number): Promise<number> {
    const sql = await this.prepared();
    // Not prepared: LIMIT takes an integer, and the binary protocol would send the number as a double.
    return (await this.run(sql.purge, [limit], false)).affected;
  }

  // MariaDB built with wsrep (Debian's is) knows the variable; it is ON on a node of a Galera cluster.
  private async isGaleraNode(): Promise<boolean> {
    const rows = (await this.withRunner((runner) => runner.query('SELECT @@wsrep_on AS wsrep_on'))) as Array<{ wsrep_on: number | string }>;
    return Number(rows[0]?.wsrep_on ?? 0) === 1;
  }

  // MySQL has no INSERT ... RETURNING: the upsert and the read share one transaction so that the
  // row read back is the one this upsert left, under the row lock the upsert took.
  private claimWithoutReturning(sql: Statements, params: unknown[], request: ClaimRequest): Promise<RecordRow | undefined> {
    return this.withRunner(async (runner) => {
      await this.connect(runner);
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
    await this.connect(runner);
    if (prepared && this.family === 'mysql') return executePrepared(this.dataSource, runner, sql, params);
    const result = await runner.query(sql, params, true);
    if (this.family === 'mysql') return sqlResultOf(result.raw, result.affected);
    return { records: (result.records as RecordRow[] | undefined) ?? [], affected: result.affected ?? 0 };
  }

  /** PostgreSQL only: a script of statements with its parameters written in, as one simple query (one round trip). */
  private async executeScript(runner: QueryRunner, sql: string, params: unknown[]): Promise<SqlResult> {
    const client = (await this.connect(runner)) as PostgresClient;
    this.dataSource.logger.logQuery(sql, params, runner);
    let results: PostgresResult | PostgresResult[];
    try {
      results = await client.query(withPostgresLiterals(sql, params));
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      this.dataSource.logger.logQueryError(failure, sql, params, runner);
      throw new QueryFailedError(sql, params, failure);
    }
    const all = Array.isArray(results) ? results : [results];
    const withRows = all.filter((result) => result.rows.length > 0);
    return { records: (withRows.at(-1)?.rows ?? []) as RecordRow[], affected: all[0]?.rowCount ?? 0 };
  }

  /**
   * The runner's connection. A call that gave up while waiting for a pooled one has already failed
   * its request (503): its statements must never run once a connection frees up, or a claim nobody
   * waits for would hold the key against the client's own retry.
   */
  private async connect(runner: QueryRunner): Promise<object> {
    const connection = (await runner.connect()) as object;
    if (abandonedRunners.has(runner)) throw new StoreTimeoutError(this.timeoutMs);
    return connection;
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
        abandonedRunners.add(runner);
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
    if (this.family !== 'mysql') return buildStatements(sqlDialect(this.family, false));
    const rows = (await this.withRunner((runner) => runner.query('SELECT VERSION() AS version'))) as Array<{ version: string }>;
    const version = rows[0]?.version ?? '';
    const mariaDb = /mariadb/i.test(version);
    const returning = !this.forceWithoutReturning && mariaDbHasReturning(version);
    // Compound statements came with MariaDB 10.1; the test seam asks for MySQL 8's behaviour.
    const server: MysqlServer = { mariaDb, compound: returning, galera: mariaDb && (await this.isGaleraNode()) };
    return buildStatements(sqlDialect(this.family, returning), server);
  }
}

// A claim that lost a race is tried again at once: the statement then finds the winner's record.
const CLAIM_ATTEMPTS = 3;

/**
 * Runs a claim, again when the database rolled it back for a concurrent claim of the same key:
 * on Galera, two nodes' claims of one key conflict at certification and the loser gets a deadlock
 * error (1213); a plain server reports one when two upserts meet on the index's gap. Either way
 * the claim was not made, and the next attempt reads the winner's record.
 */
async function retriedOnLostRace<T>(claim: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await claim();
    } catch (error) {
      if (attempt >= CLAIM_ATTEMPTS || !isLostRace(error)) throw error;
    }
  }
}

/** MariaDB has had INSERT ... RETURNING since 10.5; MySQL has none. */
export function mariaDbHasReturning(version: string): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!match || !/mariadb/i.test(version)) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 10 || (major === 10 && minor >= 5);
}

interface PostgresResult {
  readonly rows: unknown[];
  readonly rowCount: number | null;
}

/** pg's Client: a query of several statements, without parameters, answers one result per statement. */
interface PostgresClient {
  query(sql: string): Promise<PostgresResult | PostgresResult[]>;
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
  return sqlResultOf(raw, undefined);
}

/**
 * Rows and affected count from a driver's raw result. A MariaDB compound statement answers with
 * several results (one per statement that returns rows, then a status): its rows are the last
 * result set's.
 */
function sqlResultOf(raw: unknown, affected: number | undefined): SqlResult {
  if (!Array.isArray(raw)) return { records: [], affected: affected ?? (raw as { affectedRows?: number } | null)?.affectedRows ?? 0 };
  const sets = raw.filter((part) => Array.isArray(part)) as RecordRow[][];
  if (sets.length === 0) return { records: raw as RecordRow[], affected: affected ?? 0 };
  const status = raw.find((part) => !Array.isArray(part)) as { affectedRows?: number } | undefined;
  return { records: sets[sets.length - 1], affected: affected ?? status?.affectedRows ?? 0 };
}

// Runners whose call timed out: whatever they were waiting for, they must send nothing more.
const abandonedRunners = new WeakSet<QueryRunner>();

/**
 * Ends the runner's connection at once. mysql2 connections have `destroy()`; a pg `Client` has
 * none, so its socket is destroyed: the stuck query fails, and the pool drops the client.
 */
function abandon(runner: QueryRunner): void {
  const connection = (runner as unknown as { databaseConnection?: PooledConnection }).databaseConnection;
  if (typeof connection?.destroy === 'function') connection.destroy();
  else connection?.connection?.stream?.destroy?.();
}

interface PooledConnection {
  destroy?: () => void;
  connection?: { stream?: { destroy?: () => void } };
}

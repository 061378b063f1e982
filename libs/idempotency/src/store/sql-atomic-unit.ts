import { randomUUID } from 'node:crypto';
import type { EntityManager, QueryRunner } from 'typeorm';
import type { AtomicClaimOutcome, AtomicUnit, Claim, ClaimRequest, StoredResponse } from './idempotency-store.js';
import {
  advisoryLockIds,
  completeParams,
  foundRecordOf,
  pgLocksColumnsOf,
  type RecordRow,
  type Statements,
} from './sql-statements.js';

/** A statement's rows and affected count, as the TypeORM store runs it. */
export interface SqlResult {
  readonly records: RecordRow[];
  readonly affected: number;
}

/** What an atomic unit borrows from the TypeORM store that opened it. */
export interface SqlUnitContext {
  /** The store's statements, prepared on first use. */
  statements(): Promise<Statements>;
  createRunner(): QueryRunner;
  /** Runs a store statement on `runner`, prepared where the family allows. */
  execute(runner: QueryRunner, sql: string, params: unknown[]): Promise<SqlResult>;
  /** Settles within the store's timeout, or destroys the runner's connection and fails (R18). */
  within<T>(runner: QueryRunner, working: Promise<T>): Promise<T>;
  /** Runs `work` on a pooled connection of its own, within the store's timeout. */
  withRunner<T>(work: (runner: QueryRunner) => Promise<T>): Promise<T>;
  /** Destroys the runner's connection, so that it never goes back to the pool mid-transaction. */
  discard(runner: QueryRunner): void;
}

// MySQL/MariaDB: ER_LOCK_WAIT_TIMEOUT and ER_LOCK_DEADLOCK. Either means another transaction holds
// the key's row (or the index gap before it) uncommitted.
const LOCK_CONFLICT_ERRNOS = new Set([1205, 1213]);

// The idle-write limit each pooled MySQL/MariaDB connection carries, by connection: set once, in
// seconds, so an atomic claim costs no extra round trip on a connection that has it.
const idleLimitOf = new WeakMap<object, number>();

/**
 * One atomic request's transaction (R22a) on the TypeORM store: it opens with the claim, the
 * handler writes in it, and it commits once, with the stored response. Until then nobody else sees
 * the claim; the database itself decides every race on it and frees it when the transaction ends
 * for any reason: a rollback, a crash that drops the connection, or the idle-transaction limit
 * that ends the session of an owner frozen longer than its lease.
 */
export class SqlAtomicUnit implements AtomicUnit {
  private readonly runner: QueryRunner;
  private sql?: Statements;
  private finished = false;
  private detachErrorListener: () => void = () => undefined;

  constructor(private readonly context: SqlUnitContext) {
    this.runner = context.createRunner();
  }

  get manager(): EntityManager {
    return this.runner.manager;
  }

  async claim(request: ClaimRequest): Promise<AtomicClaimOutcome> {
    const { within, execute } = this.context;
    const statements = await this.context.statements();
    this.sql = statements;
    const ownerToken = randomUUID();
    let row: RecordRow | undefined;
    try {
      await within(this.runner, this.begin(statements, request.leaseMs));
      row = (await within(this.runner, execute(this.runner, statements.atomicClaim, statements.atomicClaimParams(request, ownerToken))))
        .records[0];
      if (!row && !statements.dialect.returning) {
        row = (await within(this.runner, execute(this.runner, statements.read, [request.account, request.key]))).records[0];
      }
    } catch (error) {
      await this.finish(false).catch(() => undefined);
      if (isLockConflict(error)) return this.lockedBy(statements, request);
      throw error;
    }
    if (row?.owner_token === ownerToken) {
      const { account, key, fingerprint } = request;
      return { status: 'claimed', claim: { account, key, fingerprint, ownerToken } };
    }
    await this.finish(false);
    return row ? foundRecordOf(row) : this.lockedBy(statements, request);
  }

  async renew(claim: Claim, leaseMs: number): Promise<boolean> {
    const statements = this.sql;
    if (this.finished || !statements) return false;
    const { within, execute } = this.context;
    const renewed = await within(this.runner, execute(this.runner, statements.renew, [leaseMs, claim.account, claim.key, claim.ownerToken]));
    return renewed.affected > 0;
  }

  async commitWith(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const statements = this.opened();
    const { within, execute } = this.context;
    try {
      const completed = await within(this.runner, execute(this.runner, statements.complete, completeParams(claim, response, ttlMs)));
      await this.finish(completed.affected > 0);
      return completed.affected > 0;
    } catch (error) {
      await this.finish(false).catch(() => undefined);
      throw error;
    }
  }

  async commitReleasing(claim: Claim): Promise<void> {
    const statements = this.opened();
    const { within, execute } = this.context;
    try {
      await within(this.runner, execute(this.runner, statements.release, [claim.account, claim.key, claim.ownerToken]));
      await this.finish(true);
    } catch (error) {
      await this.finish(false).catch(() => undefined);
      throw error;
    }
  }

  rollback(): Promise<void> {
    return this.finish(false);
  }

  private opened(): Statements {
    if (!this.sql || this.finished) throw new Error('nestjs-idempotency: this atomic unit holds no claim');
    return this.sql;
  }

  private async begin(statements: Statements, leaseMs: number): Promise<void> {
    const connection = (await this.runner.connect()) as object;
    const { family } = statements.dialect;
    if (family === 'postgres') this.listenForSessionEnd(connection);
    if (family === 'mysql') await this.limitIdleWrites(connection, statements.idleWriteLimitVariable, Math.max(1, Math.ceil(leaseMs / 1000)));
    await this.runner.startTransaction();
  }

  // A session the server ends while no query is running (the idle-transaction limit) makes the pg
  // client emit 'error', which nobody listens to on a checked-out client: the process would crash.
  // The unit's next statement fails instead, and the pool discards the broken client on release.
  private listenForSessionEnd(connection: object): void {
    const client = connection as { on?: (event: 'error', listener: (error: Error) => void) => void; off?: (event: 'error', listener: (error: Error) => void) => void };
    if (!client.on || !client.off) return;
    const ignore = (): void => undefined;
    client.on('error', ignore);
    this.detachErrorListener = () => client.off?.('error', ignore);
  }

  private async limitIdleWrites(connection: object, variable: string, seconds: number): Promise<void> {
    if (idleLimitOf.get(connection) === seconds) return;
    await this.runner.query(`SET SESSION ${variable} = ${seconds}`);
    idleLimitOf.set(connection, seconds);
  }

  private async finish(commit: boolean): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    try {
      if (this.runner.isTransactionActive) {
        await this.context.within(this.runner, commit ? this.runner.commitTransaction() : this.runner.rollbackTransaction());
      }
    } catch (error) {
      // The transaction's fate is the server's now (it rolls back what did not commit when the
      // connection goes): the connection must not serve anyone else.
      this.context.discard(this.runner);
      throw error;
    } finally {
      this.detachErrorListener();
      await this.runner.release().catch(() => undefined);
    }
  }

  /**
   * Another transaction holds the key uncommitted. Whose request is it? Asked after this unit's own
   * transaction has ended, on a connection of its own, so that nothing of this attempt is held.
   */
  private lockedBy(statements: Statements, request: ClaimRequest): Promise<AtomicClaimOutcome> {
    return statements.dialect.family === 'postgres' ? this.lockedOnPostgres(statements, request) : this.lockedOnMysql(statements, request);
  }

  // A dirty read is the one read that sees another transaction's uncommitted claim and its fingerprint.
  // Only the fingerprint is taken from it: a record read this way may still roll back, so a
  // "completed" one is not replayed but waited for, like one in flight.
  private async lockedOnMysql(statements: Statements, request: ClaimRequest): Promise<AtomicClaimOutcome> {
    const { execute } = this.context;
    const row = await this.context.withRunner(async (runner) => {
      await runner.query('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
      return (await execute(runner, statements.read, [request.account, request.key])).records[0];
    });
    // No row: the holder has just ended, or it holds the index gap next to this key. Try again soon.
    return { status: 'locked', sameRequest: !row || row.fingerprint === request.fingerprint };
  }

  // PostgreSQL has no dirty read: the holder's advisory locks say whether it runs this request.
  private async lockedOnPostgres(statements: Statements, request: ClaimRequest): Promise<AtomicClaimOutcome> {
    const { execute } = this.context;
    const locks = advisoryLockIds(request);
    return this.context.withRunner(async (runner) => {
      const held = (await execute(runner, statements.lockProbe, [...pgLocksColumnsOf(locks.key), ...pgLocksColumnsOf(locks.request)]))
        .records[0] as unknown as { key_held: boolean; same_request: boolean } | undefined;
      if (!held?.key_held || held.same_request) return { status: 'locked', sameRequest: true };
      // Locks are released one by one after a commit is visible: a record read now is the truth, and
      // only when there is none is the holder another request still in flight (R10).
      const row = (await execute(runner, statements.read, [request.account, request.key])).records[0];
      return row ? foundRecordOf(row) : { status: 'locked', sameRequest: false };
    });
  }
}

function isLockConflict(error: unknown): boolean {
  const { errno, driverError } = (error ?? {}) as { errno?: unknown; driverError?: { errno?: unknown } };
  const code = driverError?.errno ?? errno;
  return typeof code === 'number' && LOCK_CONFLICT_ERRNOS.has(code);
}

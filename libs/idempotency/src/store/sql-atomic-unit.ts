import { randomUUID } from 'node:crypto';
import type { EntityManager, QueryRunner } from 'typeorm';
import { interruptionOf, isFencedCompletion, isLockConflict } from './database-errors.js';
import type { AtomicClaimOutcome, AtomicInterruption, AtomicUnit, Claim, ClaimRequest, StoredResponse } from './idempotency-store.js';
import { TransactionLostRaceError } from './lost-race.error.js';
import { advisoryLockIds, pgLocksColumnsOf } from './sql-atomic-statements.js';
import { completeParams, foundRecordOf, type RecordRow, type Statements } from './sql-statements.js';

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
  /** The runner's connection, unless its call gave up (timed out) while waiting for a pooled one. */
  connect(runner: QueryRunner): Promise<object>;
  /** Runs a store statement on `runner`, prepared where the family allows. */
  execute(runner: QueryRunner, sql: string, params: unknown[]): Promise<SqlResult>;
  /** Runs a script of statements on `runner` in one round trip; its rows are the last result's that has any. */
  executeScript(runner: QueryRunner, sql: string, params: unknown[]): Promise<SqlResult>;
  /** Settles within the store's timeout, or destroys the runner's connection and fails (R18). */
  within<T>(runner: QueryRunner, working: Promise<T>): Promise<T>;
  /** Runs `work` on a pooled connection of its own, within the store's timeout. */
  withRunner<T>(work: (runner: QueryRunner) => Promise<T>): Promise<T>;
  /** Destroys the runner's connection, so that it never goes back to the pool mid-transaction. */
  discard(runner: QueryRunner): void;
}

/** How the unit's transaction ends: by a statement of the unit, or by one that already ended it. */
type Ending = 'commit' | 'rollback' | 'ended';

/** What TypeORM's query runner keeps about its transaction, which the unit opens and ends with its own statements. */
interface TransactionState {
  isTransactionActive: boolean;
  transactionDepth: number;
}

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
  private opened = false;
  private finished = false;
  private renewing?: Promise<boolean>;
  private interrupted?: AtomicInterruption;
  private detachErrorListener: () => void = () => undefined;

  constructor(private readonly context: SqlUnitContext) {
    this.runner = context.createRunner();
    this.watchHandlerStatements();
  }

  interruption(): AtomicInterruption | undefined {
    return this.interrupted;
  }

  get manager(): EntityManager {
    return this.runner.manager;
  }

  async claim(request: ClaimRequest): Promise<AtomicClaimOutcome> {
    const statements = await this.context.statements();
    this.sql = statements;
    const ownerToken = randomUUID();
    let row: RecordRow | undefined;
    try {
      row = await this.context.within(this.runner, this.open(statements, request, ownerToken));
    } catch (error) {
      await this.finish('rollback').catch(() => undefined);
      if (isLockConflict(error)) return this.lockedBy(statements, request);
      throw error;
    }
    if (row?.owner_token === ownerToken) {
      const { account, key, fingerprint } = request;
      return { status: 'claimed', claim: { account, key, fingerprint, ownerToken } };
    }
    await this.finish('rollback');
    return row ? foundRecordOf(row) : this.lockedBy(statements, request);
  }

  /**
   * One cheap statement in the transaction, which keeps the session from idling into the limit.
   * It queues behind whatever the handler's statement on this connection is doing, so it is not
   * bounded by the store's timeout: a handler busy in one long statement is no dead database
   * (the commit's timeout judges that), and its session is not idle. While one renewal waits,
   * the next is not sent.
   */
  async renew(claim: Claim, leaseMs: number): Promise<boolean> {
    const statements = this.sql;
    if (this.finished || !statements) return false;
    if (this.renewing) return true;
    const renewing = this.context
      .execute(this.runner, statements.renew, [leaseMs, claim.account, claim.key, claim.ownerToken])
      .then((renewed) => renewed.affected > 0)
      .catch((error: unknown) => {
        this.noteFailure(error);
        throw error;
      })
      .finally(() => {
        this.renewing = undefined;
      });
    this.renewing = renewing;
    return renewing;
  }

  async commitWith(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const { atomic } = this.held();
    let completed: boolean;
    try {
      const result = await this.context.within(this.runner, this.send(atomic, atomic.complete, completeParams(claim, response, ttlMs)));
      completed = atomic.completeEnds ? Number((result.records[0] as { completed?: unknown } | undefined)?.completed ?? 0) > 0 : result.affected > 0;
    } catch (error) {
      this.noteFailure(error);
      await this.finish('rollback').catch(() => undefined);
      if (isFencedCompletion(error)) return false;
      // Galera certifies at commit: a transaction another node committed first on this key fails here.
      throw this.interrupted === 'lost_race' ? new TransactionLostRaceError(error) : error;
    }
    await this.finish(atomic.completeEnds ? 'ended' : completed ? 'commit' : 'rollback');
    return completed;
  }

  async commitReleasing(claim: Claim): Promise<void> {
    const { atomic } = this.held();
    try {
      await this.context.within(this.runner, this.send(atomic, atomic.release, [claim.account, claim.key, claim.ownerToken]));
    } catch (error) {
      await this.finish('rollback').catch(() => undefined);
      throw error;
    }
    await this.finish(atomic.releaseEnds ? 'ended' : 'commit');
  }

  rollback(): Promise<void> {
    return this.finish('rollback');
  }

  /**
   * Keeps the first failure of a statement on the transaction's connection that ends the
   * transaction under its handler: the handler's own writes (through the unit's manager) included,
   * since on Galera it is often one of them that learns the transaction was aborted for another.
   */
  private watchHandlerStatements(): void {
    const runner = this.runner as unknown as { query: (...args: unknown[]) => Promise<unknown> };
    const query = runner.query.bind(runner);
    runner.query = (...args: unknown[]) =>
      query(...args).catch((error: unknown) => {
        this.noteFailure(error);
        throw error;
      });
  }

  private noteFailure(error: unknown): void {
    if (this.opened && !this.interrupted) this.interrupted = interruptionOf(error);
  }

  /** One phase's statement or script, as its family sends it; a failure that ends the transaction is noted as the handler's are. */
  private send(atomic: Statements['atomic'], sql: string, params: unknown[]): Promise<SqlResult> {
    const sending = atomic.sentAs === 'script' ? this.context.executeScript(this.runner, sql, params) : this.context.execute(this.runner, sql, params);
    return sending.catch((error: unknown) => {
      this.noteFailure(error);
      throw error;
    });
  }

  private held(): Statements {
    if (!this.sql || this.finished) throw new Error('nestjs-idempotency: this atomic unit holds no claim');
    return this.sql;
  }

  /** Sends the opening statements; the claim's row, if one came back. */
  private async open(statements: Statements, request: ClaimRequest, ownerToken: string): Promise<RecordRow | undefined> {
    const connection = await this.context.connect(this.runner);
    if (statements.dialect.family === 'postgres') this.listenForSessionEnd(connection);
    // From the first statement on, whatever happens, the transaction must be ended before the
    // connection goes back to the pool.
    this.opened = true;
    this.markTransaction(true);
    let row: RecordRow | undefined;
    for (const step of statements.atomic.open) {
      const result = await this.send(statements.atomic, step.sql, step.params(request, ownerToken));
      if (result.records.length > 0) row = result.records[0];
    }
    return row;
  }

  // TypeORM must see the transaction the unit opened with its own statements: a handler's
  // `save()` then joins it instead of starting one (which MySQL would take as a commit), and a
  // nested `manager.transaction()` becomes a savepoint.
  private markTransaction(active: boolean): void {
    const state = this.runner as unknown as TransactionState;
    state.isTransactionActive = active;
    state.transactionDepth = active ? 1 : 0;
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

  private async finish(ending: Ending): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    const atomic = this.sql?.atomic;
    try {
      if (this.opened && atomic && ending !== 'ended') {
        const { within, execute } = this.context;
        await within(this.runner, execute(this.runner, ending === 'commit' ? atomic.commit : atomic.rollback, []));
        if (atomic.afterEnd) await within(this.runner, execute(this.runner, atomic.afterEnd, []));
      }
    } catch (error) {
      // The transaction's fate is the server's now (it rolls back what did not commit when the
      // connection goes): the connection must not serve anyone else.
      this.context.discard(this.runner);
      throw error;
    } finally {
      this.markTransaction(false);
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
      // Locks are released one by one after a commit is visible: a live record read now is the
      // truth, and only when there is none is the holder another request still in flight (R10).
      // An expired record is none (R12): the holder is taking the key over with another request.
      const row = (await execute(runner, statements.read, [request.account, request.key])).records[0];
      return row && !isExpired(row) ? foundRecordOf(row) : { status: 'locked', sameRequest: false };
    });
  }
}

function isExpired(row: RecordRow): boolean {
  return row.state === 'completed' && Number(row.ttl_remaining_ms) <= 0;
}


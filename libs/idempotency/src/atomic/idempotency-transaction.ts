import { AsyncLocalStorage } from 'node:async_hooks';
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { ATOMIC_DATA_SOURCE } from '../idempotency.constants.js';

const current = new AsyncLocalStorage<EntityManager>();

/**
 * How a handler reaches the transaction of atomic mode (R22). Inject it where you use repositories
 * and write through `manager`: inside an atomic idempotent request (or `runOnce({ atomic: true })`)
 * it is that request's transaction, which commits together with the stored response; anywhere else
 * it is the DataSource's ordinary manager, so the same service code serves both.
 *
 * ```ts
 * constructor(private readonly tx: IdempotencyTransaction) {}
 * charge(...) { return this.tx.manager.getRepository(Payment).insert(payment); }
 * ```
 */
@Injectable()
export class IdempotencyTransaction {
  constructor(@Optional() @Inject(ATOMIC_DATA_SOURCE) private readonly dataSource?: DataSource) {}

  /** The atomic request's transaction, else the DataSource's manager. */
  get manager(): EntityManager {
    const manager = current.getStore() ?? this.dataSource?.manager;
    if (!manager) {
      throw new Error('nestjs-idempotency: IdempotencyTransaction.manager outside atomic mode needs a TypeORM DataSource');
    }
    return manager;
  }

  /** Whether the caller runs inside an atomic transaction. */
  get active(): boolean {
    return current.getStore() !== undefined;
  }
}

/** Runs `work` with `manager` as the current transaction of everything it awaits. */
export function runInTransaction<T>(manager: EntityManager, work: () => T): T {
  return current.run(manager, work);
}

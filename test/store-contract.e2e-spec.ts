import { afterAll, beforeAll, describe, it } from '@jest/globals';
import {
  CreateIdempotencyRecords1764064800000,
  IdempotencyRecord,
  ReplayCachingStore,
  TypeOrmIdempotencyStore,
  type IdempotencyStore,
  type TypeOrmIdempotencyStoreOptions,
} from 'nestjs-idempotency';
import { describeStoreContract, type ContractRunner, type StoreFixture } from 'nestjs-idempotency/testing';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/test-database.js';
import { betterSqlite3ForThisNode } from '../src/database/sqlite-driver.js';

const jestRunner: ContractRunner = { describe, it, beforeAll, afterAll };

function dataSourceOptionsFor(database: TestDatabase): DataSourceOptions {
  const schema = { entities: [IdempotencyRecord], migrations: [CreateIdempotencyRecords1764064800000], migrationsRun: true };
  if (database.kind === 'mariadb') return { ...schema, type: 'mysql', url: database.databaseUrl };
  if (database.kind === 'postgres') return { ...schema, type: 'postgres', url: database.databaseUrl, connectTimeoutMS: 5000 };
  return { ...schema, type: 'better-sqlite3', driver: betterSqlite3ForThisNode(), database: database.sqlitePath };
}

/** A TypeORM store on a database of its own, dropped at teardown; `wrap` puts a decorator store around it. */
function typeOrmStore(
  kind: DatabaseKind,
  databaseName: string,
  options: TypeOrmIdempotencyStoreOptions = {},
  wrap: (store: IdempotencyStore) => IdempotencyStore = (store) => store,
): () => Promise<StoreFixture> {
  return async () => {
    const database = await createTestDatabase(kind, databaseName);
    const dataSource = new DataSource(dataSourceOptionsFor(database));
    try {
      await dataSource.initialize();
    } catch (error) {
      await database.drop();
      throw error;
    }
    return {
      store: wrap(new TypeOrmIdempotencyStore(dataSource, options)),
      async teardown() {
        try {
          await dataSource.destroy();
        } finally {
          await database.drop();
        }
      },
    };
  };
}

describeStoreContract(
  'TypeOrmIdempotencyStore on MariaDB',
  { createStore: typeOrmStore('mariadb', 'contract_mariadb') },
  jestRunner,
);

describeStoreContract(
  'TypeOrmIdempotencyStore on MariaDB without RETURNING, as on MySQL 8',
  { createStore: typeOrmStore('mariadb', 'contract_mysql8', { withoutReturning: true }) },
  jestRunner,
);

describeStoreContract('TypeOrmIdempotencyStore on PostgreSQL', { createStore: typeOrmStore('postgres', 'contract_postgres') }, jestRunner);

describeStoreContract('TypeOrmIdempotencyStore on SQLite', { createStore: typeOrmStore('sqlite', 'contract_sqlite') }, jestRunner);

describeStoreContract(
  'ReplayCachingStore around TypeOrmIdempotencyStore on MariaDB',
  { createStore: typeOrmStore('mariadb', 'contract_replay_cache', {}, (store) => new ReplayCachingStore(store)) },
  jestRunner,
);

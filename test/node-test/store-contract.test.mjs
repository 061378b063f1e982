// The store contract suite under node:test, imported from the built package as a store author
// would: proves that the suite needs no Jest. Run after `npm run build`: node --test test/node-test/
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateIdempotencyRecords1764064800000, IdempotencyRecord, TypeOrmIdempotencyStore } from 'nestjs-idempotency';
import { describeStoreContract } from 'nestjs-idempotency/testing';
import { DataSource } from 'typeorm';
import { betterSqlite3ForThisNode } from '../../dist/src/database/sqlite-driver.js';

describeStoreContract(
  'TypeOrmIdempotencyStore on SQLite, under node:test',
  {
    async createStore() {
      const folder = mkdtempSync(join(tmpdir(), 'idem-contract-node-test-'));
      const dataSource = new DataSource({
        type: 'better-sqlite3',
        driver: betterSqlite3ForThisNode(),
        database: join(folder, 'store.sqlite'),
        entities: [IdempotencyRecord],
        migrations: [CreateIdempotencyRecords1764064800000],
        migrationsRun: true,
      });
      await dataSource.initialize();
      return {
        store: new TypeOrmIdempotencyStore(dataSource),
        async teardown() {
          try {
            await dataSource.destroy();
          } finally {
            rmSync(folder, { recursive: true, force: true });
          }
        },
      };
    },
  },
  { describe, it, before, after },
);

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { createTestDatabase, queryRows, type DatabaseKind } from './test-database.js';
import { betterSqlite3ForThisNode } from '../../src/database/sqlite-driver.js';

/** The stores the example API can keep its idempotency records in. */
export type SharedStoreKind = DatabaseKind | 'redis';

/** One record as the store holds it, with the store's own clock read in the same round trip. */
export interface StoredRecordTimes {
  readonly state: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly leaseExpiresAt: number;
  /** The store's clock (the database's, or the Redis server's) at the read, in ms since the epoch. */
  readonly storeNow: number;
}

/**
 * An idempotency store that several processes of the example API share, set up for one suite: the
 * environment that points an instance at it, and a reader of its records that goes around them.
 */
export interface SharedStore {
  readonly kind: SharedStoreKind;
  /** The environment of instance number `instance` (from 0). */
  env(instance: number): Record<string, string>;
  /** The record of `key`, whatever account holds it, or undefined when there is none. */
  record(key: string): Promise<StoredRecordTimes | undefined>;
  close(): Promise<void>;
}

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

/** The store's clock in ms, by each SQL family's own function (as the library's statements use it). */
const SQL_NOW_MS: Readonly<Record<DatabaseKind, string>> = {
  mariadb: 'ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000)',
  postgres: 'FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)',
  sqlite: "ROUND((julianday('now') - 2440587.5) * 86400000)",
};

export async function createSharedStore(kind: SharedStoreKind, suite: string): Promise<SharedStore> {
  return kind === 'redis' ? redisStore() : sqlStore(kind, suite);
}

async function sqlStore(kind: DatabaseKind, suite: string): Promise<SharedStore> {
  const database = await createTestDatabase(kind, suite);
  // Every instance on the same database; on SQLite, the same file (WAL lets processes share it).
  const env: Record<string, string> = database.databaseUrl ? { DATABASE_URL: database.databaseUrl } : { DATABASE_URL: '', SQLITE_PATH: database.sqlitePath };
  let reader: DataSource | undefined;
  const connected = async (): Promise<DataSource> => {
    // Connected on first use: the first instance creates the SQLite file and its tables.
    reader ??= await new DataSource(
      kind === 'sqlite'
        ? { type: 'better-sqlite3', driver: betterSqlite3ForThisNode(), database: database.sqlitePath }
        : { type: kind === 'postgres' ? 'postgres' : 'mysql', url: database.databaseUrl },
    ).initialize();
    return reader;
  };
  return {
    kind,
    env: () => env,
    async record(key) {
      const rows = await queryRows<Record<string, string | number>>(
        await connected(),
        `SELECT state, created_at, expires_at, lease_expires_at, ${SQL_NOW_MS[kind]} AS store_now FROM idempotency_records WHERE idempotency_key = ?`,
        [key],
      );
      const [row] = rows;
      if (!row) return undefined;
      return {
        state: String(row.state),
        createdAt: Number(row.created_at),
        expiresAt: Number(row.expires_at),
        leaseExpiresAt: Number(row.lease_expires_at),
        storeNow: Number(row.store_now),
      };
    },
    async close() {
      await reader?.destroy();
      await database.drop();
    },
  };
}

async function redisStore(): Promise<SharedStore> {
  // The suite's own key prefix on the shared server; its keys are deleted at the end (never FLUSHDB).
  const keyPrefix = `idem-test-${randomUUID().slice(0, 8)}:shared:`;
  // The app's own data (payments, exports) in an SQLite file per instance: only the records are shared.
  const folder = mkdtempSync(join(tmpdir(), 'idem-shared-redis-'));
  const admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const keysOf = async (pattern: string): Promise<string[]> => {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  };
  return {
    kind: 'redis',
    env: (instance) => ({
      IDEMPOTENCY_STORE: 'redis',
      REDIS_URL,
      IDEMPOTENCY_REDIS_KEY_PREFIX: keyPrefix,
      DATABASE_URL: '',
      SQLITE_PATH: join(folder, `instance-${instance}.sqlite`),
    }),
    async record(key) {
      const [recordKey, ...others] = await keysOf(`${keyPrefix}*:${key}`);
      if (!recordKey) return undefined;
      if (others.length > 0) throw new Error(`more than one record of key ${key}`);
      const [[state, createdAt, expiresAt, leaseAt], [seconds, micros]] = await Promise.all([
        admin.hmget(recordKey, 'state', 'created_at', 'expires_at', 'lease_at'),
        admin.time(),
      ]);
      if (state === null) return undefined;
      return {
        state,
        createdAt: Number(createdAt),
        expiresAt: Number(expiresAt),
        leaseExpiresAt: Number(leaseAt),
        storeNow: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000),
      };
    },
    async close() {
      const keys = await keysOf(`${keyPrefix}*`);
      if (keys.length > 0) await admin.del(...keys);
      admin.disconnect();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

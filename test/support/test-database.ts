import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';

/** The two databases every behaviour is proven on. */
export type DatabaseKind = 'mariadb' | 'sqlite';

const DEFAULT_TEST_DATABASE_URL = 'mysql://root@127.0.0.1:3306/idempotency_test';

/** A database of one suite's own: a fresh MariaDB schema, or a fresh SQLite file. */
export interface TestDatabase {
  readonly kind: DatabaseKind;
  /** For the example app's config: a mysql:// URL, or undefined for SQLite. */
  readonly databaseUrl: string | undefined;
  readonly sqlitePath: string;
  drop(): Promise<void>;
}

/**
 * Creates an empty database named after the suite, so suites can run side by side and each starts
 * clean. MariaDB: `<TEST_DATABASE_URL database>_<name>`; SQLite: a file in a temporary folder.
 */
export async function createTestDatabase(kind: DatabaseKind, name: string): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const folder = mkdtempSync(join(tmpdir(), `idem-${name}-`));
    return {
      kind,
      databaseUrl: undefined,
      sqlitePath: join(folder, 'test.sqlite'),
      drop: async () => rmSync(folder, { recursive: true, force: true }),
    };
  }
  const base = new URL(process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL);
  const database = `${base.pathname.replace(/^\//, '') || 'idempotency_test'}_${name}`.replace(/[^A-Za-z0-9_]/g, '_');
  await adminQuery(base, `DROP DATABASE IF EXISTS \`${database}\``);
  await adminQuery(base, `CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  const url = new URL(base);
  url.pathname = `/${database}`;
  return {
    kind,
    databaseUrl: url.toString(),
    sqlitePath: '',
    drop: () => adminQuery(base, `DROP DATABASE IF EXISTS \`${database}\``),
  };
}

async function adminQuery(url: URL, sql: string): Promise<void> {
  const connection = await mysql.createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
  });
  try {
    await connection.query(sql);
  } finally {
    await connection.end();
  }
}

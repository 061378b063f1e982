import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { DataSource } from 'typeorm';

/** The databases every behaviour is proven on. */
export type DatabaseKind = 'mariadb' | 'postgres' | 'sqlite';

export const DEFAULT_TEST_DATABASE_URL = 'mysql://root@127.0.0.1:3306/idempotency_test';
export const DEFAULT_TEST_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/idempotency_test';

/** A database of one suite's own: a fresh MariaDB or PostgreSQL database, or a fresh SQLite file. */
export interface TestDatabase {
  readonly kind: DatabaseKind;
  /** For the example app's config: a mysql:// or postgres:// URL, or undefined for SQLite. */
  readonly databaseUrl: string | undefined;
  readonly sqlitePath: string;
  drop(): Promise<void>;
}

/**
 * Creates an empty database named after the suite, so suites can run side by side and each starts
 * clean. MariaDB: `<TEST_DATABASE_URL database>_<name>`; PostgreSQL: `<TEST_POSTGRES_URL
 * database>_<name>`; SQLite: a file in a temporary folder.
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
  const base = new URL(kind === 'postgres' ? testPostgresUrl() : (process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL));
  const database = `${base.pathname.replace(/^\//, '') || 'idempotency_test'}_${name}`.replace(/[^A-Za-z0-9_]/g, '_').toLowerCase();
  const admin = kind === 'postgres' ? postgresAdmin : mysqlAdmin;
  const quoted = kind === 'postgres' ? `"${database}"` : `\`${database}\``;
  await admin(base, `DROP DATABASE IF EXISTS ${quoted}${kind === 'postgres' ? ' WITH (FORCE)' : ''}`);
  await admin(base, `CREATE DATABASE ${quoted}${kind === 'mariadb' ? ' CHARACTER SET utf8mb4' : ''}`);
  const url = new URL(base);
  url.pathname = `/${database}`;
  return {
    kind,
    databaseUrl: url.toString(),
    sqlitePath: '',
    drop: () => admin(base, `DROP DATABASE IF EXISTS ${quoted}${kind === 'postgres' ? ' WITH (FORCE)' : ''}`),
  };
}

export function testPostgresUrl(): string {
  return process.env.TEST_POSTGRES_URL ?? DEFAULT_TEST_POSTGRES_URL;
}

/** The database kind a TypeORM DataSource talks to, for SQL that differs between them. */
export function databaseKindOf(dataSource: DataSource): DatabaseKind {
  const type = dataSource.options.type;
  if (type === 'postgres') return 'postgres';
  return type === 'mysql' || type === 'mariadb' ? 'mariadb' : 'sqlite';
}

/**
 * Runs a test's own SQL on an app's DataSource, written with `?` placeholders on every database
 * (PostgreSQL's `$1, $2, ...` are put in here).
 */
export async function queryRows<T = Record<string, unknown>>(dataSource: DataSource, sql: string, params: unknown[] = []): Promise<T[]> {
  let index = 0;
  const text = databaseKindOf(dataSource) === 'postgres' ? sql.replace(/\?/g, () => `$${++index}`) : sql;
  return (await dataSource.query(text, params)) as T[];
}

/** `SELECT COUNT(*) AS n ...` as a number, whatever type the driver returns it as. */
export async function countOf(dataSource: DataSource, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await queryRows<{ n: string | number }>(dataSource, sql, params);
  return Number(row.n);
}

async function mysqlAdmin(url: URL, sql: string): Promise<void> {
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

async function postgresAdmin(url: URL, sql: string): Promise<void> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

import mysql from 'mysql2/promise';
import pg from 'pg';

/** A direct connection for a test to read what the fleet wrote, bypassing every app instance. */
export interface SqlClient {
  readonly kind: 'mariadb' | 'postgres';
  /** Runs `sql`, written with `?` placeholders on either database. */
  rows<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  end(): Promise<void>;
}

/** Connects to the database of a mysql:// or postgres:// URL. */
export async function connectSql(databaseUrl: string): Promise<SqlClient> {
  if (databaseUrl.startsWith('postgres')) {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    return {
      kind: 'postgres',
      rows: async <T>(sql: string, params: unknown[] = []) => {
        let index = 0;
        return (await client.query(sql.replace(/\?/g, () => `$${++index}`), params)).rows as T[];
      },
      end: () => client.end(),
    };
  }
  const url = new URL(databaseUrl);
  const connection = await mysql.createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database: url.pathname.replace(/^\//, ''),
  });
  return {
    kind: 'mariadb',
    rows: async <T>(sql: string, params: unknown[] = []) => (await connection.query(sql, params))[0] as T[],
    end: () => connection.end(),
  };
}

export async function countRows(sql: SqlClient, query: string, params: unknown[] = []): Promise<number> {
  const [row] = await sql.rows<{ n: number | string }>(query, params);
  return Number(row.n);
}

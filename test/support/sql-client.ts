import mysql from 'mysql2/promise';

/** A direct MariaDB connection for a test to read what the fleet wrote, bypassing every app instance. */
export async function connectSql(databaseUrl: string): Promise<mysql.Connection> {
  const url = new URL(databaseUrl);
  return mysql.createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database: url.pathname.replace(/^\//, ''),
  });
}

export async function countRows(sql: mysql.Connection, query: string, params: unknown[] = []): Promise<number> {
  const [rows] = await sql.query(query, params);
  return Number((rows as Array<{ n: number | string }>)[0].n);
}

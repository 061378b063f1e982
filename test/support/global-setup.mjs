// Runs once before every suite: the end-to-end suites need a MariaDB/MySQL server and a PostgreSQL
// server, and a missing one must fail loudly with what to do, never skip.
import mysql from 'mysql2/promise';
import pg from 'pg';

export const DEFAULT_TEST_DATABASE_URL = 'mysql://root@127.0.0.1:3306/idempotency_test';
export const DEFAULT_TEST_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/idempotency_test';

export default async function globalSetup() {
  await checkMysql();
  await checkPostgres();
}

async function checkPostgres() {
  const url = new URL(process.env.TEST_POSTGRES_URL ?? DEFAULT_TEST_POSTGRES_URL);
  // Suites create databases named after this one; the server's own "postgres" database is where.
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `The tests need PostgreSQL at ${url.host} (TEST_POSTGRES_URL), and none answered: ${error.message}\n` +
        'Start it, for example: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n' +
        'or point TEST_POSTGRES_URL at a server: postgres://user:pass@host:port/database',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkMysql() {
  const url = new URL(process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL);
  const database = url.pathname.replace(/^\//, '') || 'idempotency_test';
  let connection;
  try {
    connection = await mysql.createConnection({
      host: url.hostname,
      port: Number(url.port || 3306),
      user: decodeURIComponent(url.username || 'root'),
      password: decodeURIComponent(url.password),
      connectTimeout: 5000,
    });
  } catch (error) {
    throw new Error(
      `The tests need MySQL or MariaDB at ${url.host} (TEST_DATABASE_URL), and none answered: ${error.message}\n` +
        'Start it, for example: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd\n' +
        'or point TEST_DATABASE_URL at a server: mysql://user:pass@host:port/database',
    );
  }
  await connection.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
  await connection.end();
}

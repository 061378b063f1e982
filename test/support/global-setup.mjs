// Runs once before every suite: the end-to-end suites need a MariaDB/MySQL server, and a missing
// one must fail loudly with what to do, never skip.
import mysql from 'mysql2/promise';

export const DEFAULT_TEST_DATABASE_URL = 'mysql://root@127.0.0.1:3306/idempotency_test';

export default async function globalSetup() {
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

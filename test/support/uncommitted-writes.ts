import { countRows, type SqlClient } from './sql-client.js';

/**
 * Whether a payment of `customerId` is written inside a transaction that has not committed: an
 * atomic request in flight (R22a). MariaDB shows it to a dirty read; PostgreSQL has no dirty reads,
 * so there the insert shows as the lock it holds on the table (the test's database is its own).
 */
export async function paymentWrittenUncommitted(sql: SqlClient, customerId: string): Promise<boolean> {
  if (sql.kind === 'mariadb') {
    // Applies to the next statement's transaction only.
    await sql.rows('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
    return (await countRows(sql, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [customerId])) === 1;
  }
  const locks = await countRows(
    sql,
    "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'payments' AND l.mode = 'RowExclusiveLock' AND l.granted",
  );
  return locks > 0;
}

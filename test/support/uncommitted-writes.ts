import { countRows, type SqlClient } from './sql-client.js';

/**
 * Whether a payment of `customerId` is written inside a transaction that has not committed: an
 * atomic request in flight (R22a). MariaDB shows it to a dirty read; PostgreSQL has no dirty reads,
 * so there the insert shows as the lock it holds on the table (the test's database is its own).
 */
export function paymentWrittenUncommitted(sql: SqlClient, customerId: string): Promise<boolean> {
  return rowWrittenUncommitted(sql, 'payments', 'customer_id', customerId);
}

/** The same for any table of the example: a row whose `column` is `value`, not yet committed. */
export async function rowWrittenUncommitted(sql: SqlClient, table: 'payments' | 'captures', column: string, value: string): Promise<boolean> {
  if (sql.kind === 'mariadb') {
    // Applies to the next statement's transaction only.
    await sql.rows('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
    return (await countRows(sql, `SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`, [value])) === 1;
  }
  const locks = await countRows(
    sql,
    "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = ? AND l.mode = 'RowExclusiveLock' AND l.granted",
    [table],
  );
  return locks > 0;
}

import { countRows, type SqlClient } from './sql-client.js';

/**
 * Whether a payment of `customerId` is written inside a transaction that has not committed: an
 * atomic request in flight (R22a). See rowWrittenUncommitted.
 */
export function paymentWrittenUncommitted(sql: SqlClient, customerId: string): Promise<boolean> {
  return rowWrittenUncommitted(sql, 'payments', 'customer_id', customerId);
}

/**
 * Whether a row of `table` whose `column` is `value` is written and not committed: the row itself,
 * not merely some write to the table. MariaDB shows it to a dirty read and hides it from a committed
 * one. PostgreSQL has no dirty read: there the table's pages are read as they are (pageinspect),
 * uncommitted row versions included, and the row counts when the transaction that wrote it is still
 * in progress. `value` must be a short string (under 127 bytes), stored in one byte of length and
 * its bytes.
 */
export async function rowWrittenUncommitted(sql: SqlClient, table: 'payments' | 'captures', column: string, value: string): Promise<boolean> {
  if (sql.kind === 'mariadb') {
    // Applies to the next statement's transaction only.
    await sql.rows('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
    const written = await countRows(sql, `SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`, [value]);
    if (written === 0) return false;
    // Seen by the dirty read first, then not by a committed read: it was not committed when seen.
    return (await countRows(sql, `SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`, [value])) === 0;
  }
  if (Buffer.byteLength(value) >= 127) throw new Error(`rowWrittenUncommitted: "${value}" is too long to be matched in a page`);
  await withPageInspect(sql);
  const rows = await countRows(sql, UNCOMMITTED_ROWS_ON_POSTGRES, [table, column, table, table, table, value]);
  return rows > 0;
}

const readyClients = new WeakSet<SqlClient>();

/** pageinspect ships with PostgreSQL (contrib); the test's database is its own, so the extension is too. */
async function withPageInspect(sql: SqlClient): Promise<void> {
  if (readyClients.has(sql)) return;
  await sql.rows('CREATE EXTENSION IF NOT EXISTS pageinspect');
  readyClients.add(sql);
}

/*
 * Every row version in the table's pages whose column holds the value (a short varlena: one header
 * byte, then the bytes), written by a transaction still in progress. A tuple's xmin is 32 bits;
 * pg_xact_status takes the 64-bit id, so the current epoch is put in front, one epoch back only when
 * the 32 bits are more than 2^31 above the snapshot's (xid comparison is circular): a transaction
 * that began after the snapshot was taken has an xmin just above it, in the current epoch.
 * pg_xact_status sees subtransactions of a running transaction as in progress too.
 */
const UNCOMMITTED_ROWS_ON_POSTGRES = `
  WITH target AS (
    SELECT (SELECT attnum FROM pg_attribute WHERE attrelid = ?::regclass AND attname = ?) AS attnum,
      pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next_xid
  ), versions AS (
    SELECT item.t_xmin::text::bigint AS xmin, item.t_attrs[(SELECT attnum FROM target)] AS cell
    FROM generate_series(0, (pg_relation_size(?::regclass) / current_setting('block_size')::int)::int - 1) AS page,
      LATERAL heap_page_item_attrs(get_raw_page(?, page), ?::regclass) AS item
    WHERE item.t_attrs IS NOT NULL
  )
  SELECT COUNT(*) AS n FROM versions, target
  WHERE substring(cell FROM 2) = convert_to(?, 'UTF8')
    AND pg_xact_status(((next_xid >> 32 << 32) + xmin - CASE WHEN xmin > (next_xid & 4294967295) + 2147483648 THEN 4294967296 ELSE 0 END)::text::xid8) = 'in progress'`;

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connectSql, type SqlClient } from './support/sql-client.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { paymentWrittenUncommitted } from './support/uncommitted-writes.js';

// The atomic suites (R22a) wait on this helper to know that a handler's payment is written and not
// committed: it must see that one customer's row, uncommitted, and nothing else.
describe.each(['mariadb', 'postgres'] as const)('the uncommitted-write probe the atomic suites use, on %s', (kind) => {
  let database: TestDatabase;
  let probe: SqlClient;
  let writer: SqlClient;

  beforeAll(async () => {
    database = await createTestDatabase(kind, 'uncommitted_probe');
    probe = await connectSql(database.databaseUrl ?? '');
    writer = await connectSql(database.databaseUrl ?? '');
    await probe.rows('CREATE TABLE payments (id INTEGER PRIMARY KEY, customer_id VARCHAR(64) NOT NULL)');
    await probe.rows("INSERT INTO payments VALUES (1, 'cus_committed')");
  });

  afterAll(async () => {
    await writer?.end();
    await probe?.end();
    await database?.drop();
  });

  it("sees a customer's row that a transaction still open wrote, and not another customer's, nor a committed row (R22a)", async () => {
    expect(await paymentWrittenUncommitted(probe, 'cus_pending')).toBe(false);
    await writer.rows(kind === 'mariadb' ? 'START TRANSACTION' : 'BEGIN');
    await writer.rows("INSERT INTO payments VALUES (2, 'cus_pending')");
    try {
      expect(await paymentWrittenUncommitted(probe, 'cus_pending')).toBe(true);
      expect(await paymentWrittenUncommitted(probe, 'cus_other')).toBe(false);
      expect(await paymentWrittenUncommitted(probe, 'cus_committed')).toBe(false);
    } finally {
      await writer.rows('COMMIT');
    }
    // Committed now: no longer an uncommitted write.
    expect(await paymentWrittenUncommitted(probe, 'cus_pending')).toBe(false);
  });

  it('forgets a row whose transaction rolled back (R22a)', async () => {
    await writer.rows(kind === 'mariadb' ? 'START TRANSACTION' : 'BEGIN');
    await writer.rows("INSERT INTO payments VALUES (3, 'cus_rolled_back')");
    expect(await paymentWrittenUncommitted(probe, 'cus_rolled_back')).toBe(true);
    await writer.rows('ROLLBACK');
    expect(await paymentWrittenUncommitted(probe, 'cus_rolled_back')).toBe(false);
  });
});

import type { DataSource } from 'typeorm';
import { queryRows } from './test-database.js';

/** A completed record as the store holds it, read with plain SQL. */
export interface StoredRecordRow {
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

/** The stored response of a key, or undefined when nothing is stored (never claimed, or released). */
export async function storedRecord(dataSource: DataSource, key: string): Promise<StoredRecordRow | undefined> {
  const rows = (await queryRows(dataSource, 
    'SELECT response_headers, response_body FROM idempotency_records WHERE idempotency_key = ? AND response_status IS NOT NULL',
    [key],
  )) as Array<{ response_headers: string; response_body: Buffer | Uint8Array }>;
  if (rows.length === 0) return undefined;
  return { headers: JSON.parse(rows[0].response_headers) as StoredRecordRow['headers'], body: Buffer.from(rows[0].response_body) };
}

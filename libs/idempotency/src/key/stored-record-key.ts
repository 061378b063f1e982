import { createHash } from 'node:crypto';

const MAX_STORED_KEY_LENGTH = 255;

/**
 * The stored key of one idempotent field of a GraphQL operation: the client's key and the field's
 * response name, so that an operation with two idempotent mutations keeps two records. Past the
 * column's width, its SHA-256, so that it is never truncated into another key.
 */
export function storedRecordKey(key: string, responseName: string): string {
  const combined = `${key}#${responseName}`;
  return combined.length <= MAX_STORED_KEY_LENGTH ? combined : `sha256:${createHash('sha256').update(combined).digest('hex')}`;
}

import { describe, expect, it } from '@jest/globals';
import { mariaDbHasReturning } from './typeorm-idempotency.store.js';

// The claim (R8-R11) is one INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING round trip where the
// server supports RETURNING; elsewhere the store must fall back to a separate read.
describe('mariaDbHasReturning', () => {
  it.each([
    ['10.11.19-MariaDB-0+deb12u1', true],
    ['10.5.0-MariaDB', true],
    ['11.4.2-MariaDB', true],
    ['10.4.30-MariaDB', false],
    ['8.0.36', false],
  ])('reads %s as %s for a RETURNING claim (R8)', (version, expected) => {
    expect(mariaDbHasReturning(version)).toBe(expected);
  });

  it('does not assume RETURNING when the version is unknown (R8)', () => {
    expect(mariaDbHasReturning('')).toBe(false);
    expect(mariaDbHasReturning('MariaDB')).toBe(false);
  });
});

import { describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { mariaDbHasReturning, TypeOrmIdempotencyStore } from './typeorm-idempotency.store.js';

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

// R18 on PostgreSQL: pg waits forever for a connection the network never answers unless the
// DataSource sets connectTimeoutMS (test/store-faults proves the stuck slot on a silent network).
describe('TypeOrmIdempotencyStore on PostgreSQL without a connect timeout', () => {
  function warningsFor(options: Record<string, unknown>): string[] {
    const warnings: string[] = [];
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void warnings.push(String(message)));
    try {
      new TypeOrmIdempotencyStore({ options } as unknown as DataSource);
    } finally {
      warn.mockRestore();
    }
    return warnings;
  }

  it('warns at construction, naming connectTimeoutMS, when the PostgreSQL DataSource has none (R18)', () => {
    expect(warningsFor({ type: 'postgres' })).toEqual([expect.stringContaining('Set connectTimeoutMS')]);
    expect(warningsFor({ type: 'postgres', connectTimeoutMS: 0 })).toHaveLength(1);
  });

  it('says nothing when it has one, nor for MySQL, whose driver times connections out by default (R18)', () => {
    expect(warningsFor({ type: 'postgres', connectTimeoutMS: 5000 })).toEqual([]);
    expect(warningsFor({ type: 'mysql' })).toEqual([]);
  });
});

/** The SQL families the TypeORM store speaks. */
export type SqlFamily = 'mysql' | 'postgres' | 'sqlite';

const FAMILIES: Readonly<Record<string, SqlFamily>> = {
  mysql: 'mysql',
  mariadb: 'mysql',
  postgres: 'postgres',
  sqlite: 'sqlite',
  'better-sqlite3': 'sqlite',
};

/** Maps a TypeORM driver type to its SQL family, or explains which databases are supported. */
export function sqlFamilyOf(driverType: string): SqlFamily {
  const family = FAMILIES[driverType];
  if (!family) {
    throw new Error(
      `nestjs-idempotency: the TypeORM store supports MySQL, MariaDB, PostgreSQL and SQLite (better-sqlite3); ` +
        `this DataSource is "${driverType}". Pass your own IdempotencyStore in the module's "store" option.`,
    );
  }
  return family;
}

/**
 * The SQL that differs between families. Everything else the store sends is plain SQL that both
 * accept. Times are integer milliseconds since the epoch, computed by the database (R19).
 */
export interface SqlDialect {
  readonly family: SqlFamily;
  /** Whether `INSERT ... RETURNING` exists (MariaDB 10.5+, PostgreSQL, SQLite 3.35+; not MySQL). */
  readonly returning: boolean;
  readonly table: string;
  readonly nowMs: string;
  /** The upsert's opening words, up to the first assignment. */
  readonly onConflict: string;
  /** The value the upsert tried to insert into `column`. */
  proposed(column: string): string;
  /**
   * The existing row's `column` inside the upsert's assignments. PostgreSQL calls a bare name there
   * ambiguous (it could be the proposed row's), so it gets the table's name.
   */
  existing(column: string): string;
  /**
   * Whether this upsert won the row, usable in every assignment after the first (which sets
   * `owner_token`). MySQL evaluates an upsert's assignments left to right, each seeing the ones
   * before, so "the owner token is now mine" is the test; SQLite evaluates every assignment on the
   * old row, so the takeover condition itself is repeated.
   */
  won(takeover: string): string;
  /** Deletes at most `?` expired rows, oldest first, in one short statement. */
  purgeBatch(expired: string): string;
  /** The statement as the driver takes it: `?` placeholders, or PostgreSQL's `$1, $2, ...`. */
  placeholders(sql: string): string;
}

const MYSQL_NOW_MS = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000)";
const SQLITE_NOW_MS = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
// clock_timestamp(), not now(): now() is the start of the transaction, which in atomic mode began
// before the handler ran, and would make a record expire early by the handler's duration.
const POSTGRES_NOW_MS = 'FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint';

const asIs = (sql: string): string => sql;

export function sqlDialect(family: SqlFamily, mysqlHasReturning: boolean): SqlDialect {
  if (family === 'mysql') {
    const table = '`idempotency_records`';
    return {
      family,
      returning: mysqlHasReturning,
      table,
      nowMs: MYSQL_NOW_MS,
      onConflict: 'ON DUPLICATE KEY UPDATE',
      proposed: (column) => `VALUES(${column})`,
      existing: asIs,
      won: () => 'owner_token = VALUES(owner_token)',
      purgeBatch: (expired) => `DELETE FROM ${table} WHERE ${expired} ORDER BY expires_at LIMIT ?`,
      placeholders: asIs,
    };
  }
  if (family === 'postgres') {
    const table = '"idempotency_records"';
    return {
      family,
      returning: true,
      table,
      nowMs: POSTGRES_NOW_MS,
      onConflict: 'ON CONFLICT (account, idempotency_key) DO UPDATE SET',
      proposed: (column) => `excluded.${column}`,
      existing: (column) => `${table}.${column}`,
      // Like SQLite, every assignment sees the old row.
      won: (takeover) => `(${takeover})`,
      // SKIP LOCKED: a purge never waits behind a claim that holds one of its rows, nor makes it wait.
      purgeBatch: (expired) =>
        `DELETE FROM ${table} WHERE (account, idempotency_key) IN ` +
        `(SELECT account, idempotency_key FROM ${table} WHERE ${expired} ORDER BY expires_at LIMIT ? FOR UPDATE SKIP LOCKED)`,
      placeholders: numbered,
    };
  }
  const table = '"idempotency_records"';
  return {
    family,
    returning: true,
    table,
    nowMs: SQLITE_NOW_MS,
    onConflict: 'ON CONFLICT (account, idempotency_key) DO UPDATE SET',
    proposed: (column) => `excluded.${column}`,
    existing: asIs,
    won: (takeover) => `(${takeover})`,
    purgeBatch: (expired) =>
      `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE ${expired} ORDER BY expires_at LIMIT ?)`,
    placeholders: asIs,
  };
}

// The store's statements hold no string literal with a `?` in it, so every `?` is a placeholder.
function numbered(sql: string): string {
  let index = 0;
  return sql.replace(/\?/g, () => `$${++index}`);
}

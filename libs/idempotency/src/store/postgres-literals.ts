/**
 * A statement's `$n` parameters written into its text as PostgreSQL literals, for a script of
 * several statements sent as one simple query (the extended protocol that binds parameters takes
 * one statement per message, and so one round trip each). Strings are quoted as pg's `escapeLiteral`
 * quotes them (not imported: pg is an optional peer), bytes go as hex through `decode`, numbers only
 * when they are finite: nothing a client sends can end a literal early. The store's statements hold
 * no `$` other than their placeholders.
 */
export function withPostgresLiterals(sql: string, params: readonly unknown[]): string {
  return sql.replace(/\$(\d+)/g, (placeholder, index: string) => {
    const position = Number(index) - 1;
    if (position < 0 || position >= params.length) throw new Error(`nestjs-idempotency: ${placeholder} has no parameter`);
    return postgresLiteral(params[position]);
  });
}

function postgresLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return quoted(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`nestjs-idempotency: ${value} cannot be a PostgreSQL parameter`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (value instanceof Uint8Array) return `decode('${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}', 'hex')`;
  throw new Error(`nestjs-idempotency: a ${typeof value} cannot be a PostgreSQL parameter`);
}

/**
 * A string literal that means `text` whatever `standard_conforming_strings` says: quotes doubled,
 * and where there is a backslash, an escape string (` E'...'`, spaced as pg spaces it) with
 * backslashes doubled. A NUL is refused: the simple query message ends at the first one, so the
 * bytes after it would be read as protocol messages (PostgreSQL text cannot hold one anyway, and
 * refuses it as a bound parameter too).
 */
function quoted(text: string): string {
  if (text.includes('\0')) throw new Error('nestjs-idempotency: PostgreSQL text cannot hold U+0000');
  const body = text.replace(/'/g, "''");
  return text.includes('\\') ? ` E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

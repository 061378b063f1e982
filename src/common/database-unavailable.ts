// A database that is gone or will not serve (a node shut down or killed, a Galera node outside the
// primary component: "WSREP has not yet prepared node for application use", a lost connection).
// The request may succeed on a retry, so the API answers 503, as the idempotency library does for
// its own store: a 500 would tell the client that retrying is pointless.
const MYSQL_UNAVAILABLE_ERRNOS: ReadonlySet<number> = new Set([1047, 1053, 1927, 2002, 2003, 2006, 2013]);
const SOCKET_CODES: ReadonlySet<string> = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);
// PostgreSQL's connection exceptions (08...) and operator interventions such as admin shutdown (57P0x).
const POSTGRES_UNAVAILABLE = /^(08|57P0)/;

/** Whether an error raised while talking to the database means the database is unavailable right now. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const outer = (error ?? {}) as { errno?: unknown; code?: unknown; message?: unknown; driverError?: { errno?: unknown; code?: unknown; message?: unknown } };
  const inner = outer.driverError ?? outer;
  const errno = inner.errno ?? outer.errno;
  const code = inner.code ?? outer.code;
  if (typeof errno === 'number' && MYSQL_UNAVAILABLE_ERRNOS.has(errno)) return true;
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || POSTGRES_UNAVAILABLE.test(code))) return true;
  return /Connection terminated|connection is closed|Pool is closed/i.test(String(inner.message ?? outer.message ?? ''));
}

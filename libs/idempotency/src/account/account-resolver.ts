import { createHash } from 'node:crypto';

/**
 * Returns the account (tenant) a request acts for (R5). `undefined` or `null` puts the request in
 * the shared anonymous scope; throwing an `HttpException` refuses the request.
 */
export type AccountResolver = (request: unknown) => string | number | null | undefined | Promise<string | number | null | undefined>;

/** The scope of requests whose account resolves to nothing. */
export const ANONYMOUS_ACCOUNT = '';

const MAX_STORED_ACCOUNT_LENGTH = 191;

/** Default: the principal an auth guard put on `request.user`: `accountId`, else `sub`, else `id`. */
export const defaultAccountResolver: AccountResolver = (request) => {
  const user = (request as { user?: unknown } | undefined)?.user;
  if (user === null || typeof user !== 'object') return undefined;
  const principal = user as { accountId?: unknown; sub?: unknown; id?: unknown };
  const account = principal.accountId ?? principal.sub ?? principal.id;
  return typeof account === 'string' || typeof account === 'number' ? account : undefined;
};

/**
 * The account as stored: the resolver's value, or, past the column's width, its SHA-256, so that
 * a long account identifier is still exact and never truncated into someone else's.
 */
export function storedAccount(account: string | number | null | undefined): string {
  if (account === null || account === undefined) return ANONYMOUS_ACCOUNT;
  const text = String(account);
  return text.length <= MAX_STORED_ACCOUNT_LENGTH ? text : `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** The account a request acts for, as stored: what scopes its key (R5). */
export async function resolveStoredAccount(resolver: AccountResolver, request: unknown): Promise<string> {
  return storedAccount(await resolver(request));
}

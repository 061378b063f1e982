/**
 * An account id as resolvers return it: a string or a number, or what databases hand out for ids
 * that are neither (a `bigint`, an ObjectId, anything with `toHexString()` or its own `toString()`).
 */
export type AccountId = string | number | bigint | { toHexString(): string } | { toString(): string };

/**
 * Returns the account (tenant) a request acts for (R5). `undefined` or `null` puts a request
 * without a principal in the shared anonymous scope (R5a); a request whose `user` is set is then
 * refused instead. Throwing an `HttpException` refuses the request.
 */
export type AccountResolver = (request: unknown) => AccountId | null | undefined | Promise<AccountId | null | undefined>;

/**
 * Default: the principal an auth guard put on `request.user`: its `accountId`, else `sub` (a JWT's
 * subject), else `userId` (the user object of NestJS's authentication guide), else `id`.
 */
export const defaultAccountResolver: AccountResolver = (request) => {
  const user = principalOf(request);
  if (user === null || typeof user !== 'object') return undefined;
  const principal = user as { accountId?: unknown; sub?: unknown; userId?: unknown; id?: unknown };
  return (principal.accountId ?? principal.sub ?? principal.userId ?? principal.id ?? undefined) as AccountId | undefined;
};

/** The principal an auth guard attached to the request (`request.user`), or undefined when none did. */
export function principalOf(request: unknown): unknown {
  if (request === null || typeof request !== 'object') return undefined;
  const user = (request as { user?: unknown }).user;
  return user === null ? undefined : user;
}

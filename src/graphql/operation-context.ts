/** The GraphQL context of an operation: the HTTP request and response that carry it. */
export interface OperationContext {
  readonly req: object;
  /**
   * The Express response or the Fastify reply. Nest's default context holds only `req`; the
   * idempotency library sets `Idempotency-Replayed` on this one, and Fastify's request has no
   * link back to its reply.
   */
  readonly res: object;
}

/**
 * Apollo's context function on either platform: the Express integration passes `{ req, res }`,
 * the Fastify one `(request, reply)`.
 */
export function operationContext(first: object, reply?: object): OperationContext {
  if (reply !== undefined) return { req: first, res: reply };
  const { req, res } = first as OperationContext;
  return { req, res };
}

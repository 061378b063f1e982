import { HttpException } from '@nestjs/common';

/** The stable codes of the contract (R17); clients switch on these, never on messages. */
export type IdempotencyErrorCode =
  | 'idempotency_key_missing'
  | 'invalid_idempotency_key'
  | 'idempotency_key_reuse'
  | 'idempotency_conflict'
  | 'idempotency_unavailable'
  | 'idempotency_account_unresolved'
  | 'idempotency_body_too_large'
  | 'idempotency_body_unreadable';

/** What holds a key: an HTTP or message header, a GraphQL argument, a message payload's property. */
export type KeyCarrier = 'header' | 'argument' | 'property';

/**
 * Base of every error the library answers with. It is an `HttpException` whose response is the
 * default error body, so even an application filter that knows nothing of this library sends
 * the contract's code; the library's own filter adds headers and the configured format.
 */
export abstract class IdempotencyError extends HttpException {
  protected constructor(
    readonly code: IdempotencyErrorCode,
    message: string,
    status: number,
    /** Headers the answer must carry, such as `Retry-After`. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super({ error: { code, message } }, status);
    // HttpException derives its message from the class name for an object body; transports that
    // carry no HTTP body (GraphQL, messages) and logs show this one.
    this.message = message;
  }
}

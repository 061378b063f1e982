/** Why the client stopped trying: it used every attempt allowed, or the total time budget ran out. */
export type GiveUpReason = 'attempts' | 'time';

/** Thrown when no attempt got an answer (network errors, timeouts): retry later with the same `idempotencyKey` to get the stored one (R9). */
export class IdempotentRequestError extends Error {
  override readonly name = 'IdempotentRequestError';

  constructor(
    /** The key every attempt carried: send it again to resume the same operation. */
    readonly idempotencyKey: string,
    /** How many attempts were sent. */
    readonly attempts: number,
    /** Whether the attempts or the time budget ran out. */
    readonly reason: GiveUpReason,
    /** The last attempt's network error or timeout. */
    cause: unknown,
  ) {
    super(
      `No answer after ${attempts} attempt${attempts === 1 ? '' : 's'} (${reason === 'time' ? 'time budget' : 'attempts'} exhausted; ` +
        `last: ${describe(cause)}). Retry later with the same idempotency key ${idempotencyKey}.`,
      { cause },
    );
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const inner = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.name}: ${error.message}${inner}`;
}

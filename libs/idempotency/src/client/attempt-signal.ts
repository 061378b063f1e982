/** Why an attempt was aborted: the caller cancelled, the attempt took too long, or the whole budget ran out. */
export type AbortCause = 'caller' | 'attempt-timeout' | 'budget';

// setTimeout fires at once for anything above 2^31-1 ms, which would turn a long timeout into none.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The signal of one attempt: aborted by the caller's own signal, by the per-attempt timeout, or by
 * the end of the total budget, whichever comes first, remembering which it was so the client can
 * tell "give up" (caller, budget) from "try again" (attempt timeout).
 */
export class AttemptSignal {
  private readonly controller = new AbortController();
  private readonly timer: ReturnType<typeof setTimeout> | undefined;
  private abortedBy: AbortCause | undefined;

  constructor(
    private readonly caller: AbortSignal | undefined,
    attemptTimeoutMs: number,
    budgetLeftMs: number,
  ) {
    if (caller?.aborted) {
      this.abort('caller', caller.reason);
      return;
    }
    caller?.addEventListener('abort', this.onCallerAbort, { once: true });
    const budgetFirst = budgetLeftMs <= attemptTimeoutMs;
    const ms = Math.max(0, Math.min(budgetFirst ? budgetLeftMs : attemptTimeoutMs, MAX_TIMER_MS));
    this.timer = setTimeout(() => {
      const message = budgetFirst ? 'the retry budget ran out during the attempt' : `the attempt took longer than ${attemptTimeoutMs} ms`;
      this.abort(budgetFirst ? 'budget' : 'attempt-timeout', new DOMException(message, 'TimeoutError'));
    }, ms);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get cause(): AbortCause | undefined {
    return this.abortedBy;
  }

  /**
   * Ends the timeouts once the answer's headers are in; the caller's signal stays linked, so that
   * cancelling still stops the reading of the returned body, as it would with plain fetch.
   */
  stopTimers(): void {
    clearTimeout(this.timer);
  }

  /** Ends the timeouts and the link to the caller's signal: for attempts whose answer is discarded. */
  dispose(): void {
    this.stopTimers();
    this.caller?.removeEventListener('abort', this.onCallerAbort);
  }

  private readonly onCallerAbort = (): void => this.abort('caller', this.caller?.reason);

  private abort(cause: AbortCause, reason: unknown): void {
    if (this.abortedBy) return;
    this.abortedBy = cause;
    this.controller.abort(reason);
  }
}

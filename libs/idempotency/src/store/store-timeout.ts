/** How long a store call may take before it fails the request with 503 (R18), unless configured. */
export const DEFAULT_STORE_TIMEOUT_MS = 5000;

/** A store call that did not settle within the store's timeout. */
export class StoreTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the idempotency store did not answer within ${timeoutMs} ms`);
    this.name = 'StoreTimeoutError';
  }
}

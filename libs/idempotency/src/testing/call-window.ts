/** When a store call was sent and when its answer came back, on this process's monotonic clock. */
export interface CallWindow {
  readonly sentAt: number;
  readonly answeredAt: number;
}

/**
 * Runs a store call and notes its window. The store reads its own clock at some instant inside the
 * window, so two windows bound the time that passed on the store's clock between two calls.
 */
export async function timedCall<T>(call: () => Promise<T>): Promise<readonly [T, CallWindow]> {
  const sentAt = performance.now();
  const value = await call();
  return [value, { sentAt, answeredAt: performance.now() }];
}

/** How many callers race for one key: more than a small connection pool holds, so some calls queue. */
export const CONCURRENT_CALLERS = 20;

/** Starts `count` calls in the same tick, so that they really race. */
export function concurrently<T>(count: number, call: (index: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => call(index)));
}

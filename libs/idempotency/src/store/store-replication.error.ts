/**
 * A write the store made on its primary that too few replicas acknowledged within the store's
 * timeout. The record may be lost if the primary dies now, so nothing may rely on it: a claim is
 * given up before the work runs, and a completed run's answer is not sent as if it were safe.
 */
export class StoreReplicationError extends Error {
  constructor(
    readonly operation: 'claim' | 'complete' | 'release',
    readonly acknowledged: number,
    readonly required: number,
  ) {
    super(`the idempotency store's ${operation} reached ${acknowledged} of ${required} replicas in time`);
    this.name = 'StoreReplicationError';
  }
}

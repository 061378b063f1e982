import type { Claim, IdempotencyStore } from '../store/idempotency-store.js';

/** Renews a claim's lease while its handler runs (R20); `stop()` ends it. */
export interface LeaseHeartbeat {
  stop(): void;
}

/**
 * Renews the lease every third of it, one renewal at a time, so a handler slower than the lease
 * keeps its claim, while a process that dies stops renewing and frees the key after one lease.
 * The timer is unref'd: a heartbeat never keeps the process alive.
 */
export function startLeaseHeartbeat(
  store: IdempotencyStore,
  claim: Claim,
  leaseMs: number,
  onLost: () => void,
): LeaseHeartbeat {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(beat, Math.max(1, Math.floor(leaseMs / 3)));
    timer.unref();
  };
  const beat = (): void => {
    store.renew(claim, leaseMs).then(
      (renewed) => {
        if (stopped) return;
        if (renewed) schedule();
        else {
          stopped = true;
          onLost();
        }
      },
      // A store that is briefly unreachable: try again at the next beat; the lease still holds.
      () => schedule(),
    );
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

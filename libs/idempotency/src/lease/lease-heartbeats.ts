import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { IDEMPOTENCY_STORE, type Claim, type IdempotencyStore } from '../store/idempotency-store.js';

/** A running renewal of one claim's lease. */
export interface LeaseHeartbeat {
  /**
   * Ends the renewal. Returns when the lease it last secured ends, on the monotonic clock
   * (`performance.now()`): counted from when that renewal was sent, or from the start for a claim
   * never renewed, so never later than the database's own lease end by more than the claim's
   * round trip.
   */
  stop(): number;
}

/** How one claim is renewed. */
export interface HeartbeatPlan {
  readonly leaseMs: number;
  /** Renewal stops this long after the claim, so a hung handler cannot hold its key forever. */
  readonly maxHoldMs: number;
  /** Called once if a renewal finds the claim taken over (R20, "lost claim"). */
  readonly onLost: () => void;
  /** Told how long each renewal took and whether the store answered, for the store channel (R27). */
  readonly onRenewed?: (durationMs: number, ok: boolean) => void;
  /** How to renew, when not through the store: an atomic claim renews inside its own transaction. */
  readonly renew?: (claim: Claim, leaseMs: number) => Promise<boolean>;
}

/**
 * Renews in-flight claims while their handlers run (R20): every third of the lease, one renewal
 * at a time, so a handler slower than the lease keeps its claim while a dead process frees its key
 * after one lease. Timers are unref'd (they never keep the process alive) and all stop at
 * application shutdown, after Nest has let in-flight requests finish.
 */
@Injectable()
export class LeaseHeartbeats implements OnApplicationShutdown {
  private readonly running = new Set<LeaseHeartbeat>();

  constructor(@Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore) {}

  start(claim: Claim, plan: HeartbeatPlan): LeaseHeartbeat {
    const startedAt = performance.now();
    const giveUpAt = startedAt + plan.maxHoldMs;
    let leaseEndsAt = startedAt + plan.leaseMs;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const heartbeat: LeaseHeartbeat = {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
        this.running.delete(heartbeat);
        return leaseEndsAt;
      },
    };
    const schedule = (): void => {
      if (stopped || performance.now() >= giveUpAt) {
        heartbeat.stop();
        return;
      }
      timer = setTimeout(beat, Math.max(1, Math.floor(plan.leaseMs / 3)));
      timer.unref();
    };
    const beat = (): void => {
      const started = performance.now();
      const renewing = plan.renew ? plan.renew(claim, plan.leaseMs) : this.store.renew(claim, plan.leaseMs);
      renewing.then(
        (renewed) => {
          plan.onRenewed?.(performance.now() - started, true);
          if (renewed) {
            leaseEndsAt = Math.max(leaseEndsAt, started + plan.leaseMs);
            return schedule();
          }
          if (!stopped) plan.onLost();
          heartbeat.stop();
        },
        // The store is briefly unreachable: the lease still holds, try again at the next beat.
        () => {
          plan.onRenewed?.(performance.now() - started, false);
          schedule();
        },
      );
    };
    this.running.add(heartbeat);
    schedule();
    return heartbeat;
  }

  onApplicationShutdown(): void {
    for (const heartbeat of [...this.running]) heartbeat.stop();
  }
}

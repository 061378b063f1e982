import type { EntityManager } from 'typeorm';

/** A response as it was sent: what a replay writes back byte for byte. */
export interface StoredResponse {
  readonly status: number;
  /** Allow-listed headers only, lower-case names (R15). */
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
}

/** Everything needed to claim one (account, key) for one request. */
export interface ClaimRequest {
  readonly account: string;
  readonly key: string;
  readonly fingerprint: string;
  /** How long a completed record lives after its response is stored (R12). */
  readonly ttlMs: number;
  /** How long the claim holds if its owner stops renewing it (R20). */
  readonly leaseMs: number;
  /** A label for the route, kept for operators reading the table. */
  readonly route: string;
}

/** Proof of ownership of a claimed key: every later write is conditional on `ownerToken` (fencing). */
export interface Claim {
  readonly account: string;
  readonly key: string;
  /** The fingerprint of the request that holds the claim. */
  readonly fingerprint: string;
  readonly ownerToken: string;
}

/** A record someone else holds: still running, or finished with a stored response. */
export type FoundRecord =
  | { readonly status: 'in_flight'; readonly fingerprint: string; readonly leaseRemainingMs: number }
  | {
      readonly status: 'completed';
      readonly fingerprint: string;
      readonly response: StoredResponse;
      /** How long the record still lives, by the database's clock, when it was read. */
      readonly expiresInMs: number;
    };

/** A record whose response is stored: what a replay sends back. */
export type CompletedRecord = Extract<FoundRecord, { status: 'completed' }>;

/** What a claim found; `claimed` means this caller, and only this caller, now runs the handler. */
export type ClaimOutcome = { readonly status: 'claimed'; readonly claim: Claim } | FoundRecord;

/**
 * What a claim inside an atomic transaction found: as `claim`, or `locked` when another
 * transaction holds the key uncommitted, running this request's fingerprint (`sameRequest`: wait
 * for it, R11) or another's (refuse it at once, R10).
 */
export type AtomicClaimOutcome = ClaimOutcome | { readonly status: 'locked'; readonly sameRequest: boolean };

/**
 * Where idempotency records live. The rules each method must keep are the library's guarantees,
 * so every implementation keeps them against any number of concurrent callers in any number of
 * processes:
 *
 * - `claim` is one atomic step. Of many concurrent callers for a free key, exactly one gets
 *   `claimed`; every other one reads the winner's record. A key whose record has expired, or whose
 *   in-flight lease has ended, is taken over in that same atomic step (a read, then a write, would
 *   let two retries both take over a dead claim and both run the handler). A caller that finds a
 *   live record changes nothing (R16a): not even its expiry, so that a replay writes nothing and
 *   commits nothing, and replays of one key never queue behind each other's log flush.
 * - `complete`, `release` and `renew` are compare-and-set on the owner token: an owner whose claim
 *   was taken over changes nothing and gets `false` (R20). They must not check the lease: an owner
 *   whose lease ran out while nobody took over still holds the only claim, and completing it is
 *   correct.
 * - Every time is the database's clock (R19): the application's clock never decides anything.
 */
export interface IdempotencyStore {
  claim(request: ClaimRequest): Promise<ClaimOutcome>;
  /** Reads the current state without changing it: what a waiting retry polls (R11). */
  inspect(account: string, key: string): Promise<FoundRecord | undefined>;
  /** Stores the response and turns the claim into a completed record living `ttlMs`. */
  complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean>;
  /** Deletes the claim so that the same key can be used again (R14). */
  release(claim: Claim): Promise<boolean>;
  /** Moves the lease end to `leaseMs` from now (the heartbeat of R20). */
  renew(claim: Claim, leaseMs: number): Promise<boolean>;
  /** Deletes at most `limit` expired records; returns how many it deleted (R21). */
  purgeExpired(limit: number): Promise<number>;
  /**
   * Atomic mode (R22, R22a), for stores that keep records in the database the handlers write to: a
   * unit of work whose transaction opens with the claim. Stores without it cannot run atomic routes.
   */
  beginAtomic?(): AtomicUnit;
  /** Why this store cannot run atomic mode, or undefined when it can; checked at start-up. */
  atomicUnsupportedReason?(): string | undefined;
}

/**
 * One atomic request's transaction (R22a): the claim, the handler's writes and the stored response
 * commit together, once. Nobody else sees the claim before that commit, so the database itself
 * fences: a transaction that ends without committing (rollback, crash, a session ended by the
 * database) leaves nothing behind, and the key is free at once.
 */
export interface AtomicUnit {
  /**
   * Opens the transaction and claims the key in it. On `claimed`, the claim is this transaction's;
   * on any other outcome the transaction has already ended and nothing is held.
   */
  claim(request: ClaimRequest): Promise<AtomicClaimOutcome>;
  /** The transaction's entity manager, for the handler's own writes. */
  readonly manager: EntityManager;
  /** One cheap statement in the transaction: keeps a live owner's session and lease (R20). */
  renew(claim: Claim, leaseMs: number): Promise<boolean>;
  /**
   * Stores the response in this transaction, fenced on the owner token, and commits. Resolves
   * false, having rolled everything back, when the claim was not this transaction's any more.
   * Rejects, rolled back, when the commit itself fails.
   */
  commitWith(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean>;
  /** Commits the handler's writes and deletes the claim with them: the response is not replayable (R16b). */
  commitReleasing(claim: Claim): Promise<void>;
  /** Discards the handler's writes and the claim. */
  rollback(): Promise<void>;
  /**
   * Why the transaction can no longer commit, if the database ended it under the handler: another
   * transaction won its key (`lost_race`: a Galera certification conflict, a deadlock) or its
   * connection is gone (`unavailable`). The handler's own error then says nothing to its client.
   */
  interruption?(): AtomicInterruption | undefined;
}

/** How the database ended an atomic transaction under its handler. */
export type AtomicInterruption = 'lost_race' | 'unavailable';

/** The injection token of the store the interceptor and the service use. */
export const IDEMPOTENCY_STORE = Symbol('IDEMPOTENCY_STORE');

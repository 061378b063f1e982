/**
 * The `node:diagnostics_channel` names the library publishes on (R27). Subscribe with
 * `diagnostics_channel.subscribe(IDEMPOTENCY_CHANNELS.outcome, onMessage)`; nothing is built or
 * published while a channel has no subscriber.
 */
export const IDEMPOTENCY_CHANNELS = {
  /** One {@link IdempotencyOutcomeMessage} per idempotent request or `runOnce` call, when its outcome is known. */
  outcome: 'nestjs-idempotency:outcome',
  /** One {@link IdempotencyStoreCallMessage} per store call made for a request: its latency and whether it answered. */
  store: 'nestjs-idempotency:store',
} as const;

/**
 * How an idempotent request or `runOnce` call ended. Exactly one per request:
 * - `fresh`: the handler ran and its response was stored (R8).
 * - `takeover`: it ran after the claim it waited for died or was released, and its response was stored (R11, R20).
 * - `replayed`: the stored response was sent; the handler did not run (R9).
 * - `waited`: it found the first attempt in flight, waited, then got the replay (R11).
 * - `conflict`: the first attempt was still in flight when the wait ran out: 409 (R11).
 * - `reuse`: the key was used with another fingerprint: 422 or the configured status (R10).
 * - `released`: it ran, and its status or exception released the key (R14).
 * - `unavailable`: the store failed: 503 before the handler ran, or after it, when its outcome could not be stored (R18).
 * - `lost_claim`: it ran, but another caller had taken its claim over, so nothing it stored counts (R20).
 * - `not_replayable`: it ran, its response was streamed or written by the handler, sent as is, and the key released (R16b).
 */
export type IdempotencyOutcome =
  | 'fresh'
  | 'takeover'
  | 'replayed'
  | 'waited'
  | 'conflict'
  | 'reuse'
  | 'released'
  | 'unavailable'
  | 'lost_claim'
  | 'not_replayable';

/** Where the request came from: an HTTP route, a GraphQL mutation, a message handler or `IdempotencyService.runOnce`. */
export type IdempotencyTransport = 'http' | 'graphql' | 'message' | 'runOnce';

/** The message published on {@link IDEMPOTENCY_CHANNELS}`.outcome`. */
export interface IdempotencyOutcomeMessage {
  readonly outcome: IdempotencyOutcome;
  /** The account the key is scoped to, as stored; `runOnce:<scope>` for `runOnce`. */
  readonly account: string;
  /** The route's pattern (`POST /v1/payments/:id`), or `runOnce <scope>`: bounded, fit for a metric label. */
  readonly route: string;
  /** The first 16 hex digits of SHA-256 over `account + "\0" + key`: correlates retries without revealing the key. */
  readonly keyHash: string;
  readonly transport: IdempotencyTransport;
  /** From the start of the claim to this outcome, in ms; for a run, the handler's time included. */
  readonly totalMs: number;
  /** Time spent in the store's calls on this request's path (claim, polls, completion), in ms. */
  readonly storeMs: number;
  /** Time spent waiting for a first attempt in flight, in ms; only for requests that waited. */
  readonly waitMs?: number;
  /** The HTTP status sent, where there is one (not for `runOnce`, nor for a response never sent). */
  readonly status?: number;
}

/** The store call a {@link IdempotencyStoreCallMessage} times. */
export type IdempotencyStoreOperation = 'claim' | 'inspect' | 'complete' | 'release' | 'renew';

/** The message published on {@link IDEMPOTENCY_CHANNELS}`.store`. */
export interface IdempotencyStoreCallMessage {
  readonly operation: IdempotencyStoreOperation;
  /** From the call to its answer or failure, in ms. */
  readonly durationMs: number;
  /** False when the call failed (threw or timed out); a fenced `false` answer is still ok. */
  readonly ok: boolean;
  /** The route or `runOnce <scope>` the call was made for, as in the outcome message. */
  readonly route: string;
  readonly transport: IdempotencyTransport;
}

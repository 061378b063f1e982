import { createHash } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import {
  IDEMPOTENCY_CHANNELS,
  type IdempotencyOutcomeMessage,
  type IdempotencyStoreCallMessage,
} from './idempotency-channels.js';

// Held for the life of the process: a channel object nobody references may be collected, and with
// it the subscribers of runtimes older than Node 20.
const outcomeChannel = channel(IDEMPOTENCY_CHANNELS.outcome);
const storeChannel = channel(IDEMPOTENCY_CHANNELS.store);

/** Whether anyone listens for outcomes: when nobody does, no message is built (nor any key hashed). */
export function outcomesObserved(): boolean {
  return outcomeChannel.hasSubscribers;
}

export function publishOutcome(message: IdempotencyOutcomeMessage): void {
  outcomeChannel.publish(message);
}

/** Publishes one store call's latency, if anyone listens. */
export function publishStoreCall(message: () => IdempotencyStoreCallMessage): void {
  if (storeChannel.hasSubscribers) storeChannel.publish(message());
}

/**
 * A stable, short identity of one (account, key): what messages and spans carry instead of the key,
 * so that retries of one key can be correlated without handing keys (a `token` key may name a
 * customer's checkout) to every exporter and tracing backend.
 */
export function keyHashOf(account: string, key: string): string {
  return createHash('sha256').update(`${account}\0${key}`).digest('hex').slice(0, 16);
}

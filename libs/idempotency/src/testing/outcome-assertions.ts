import assert from 'node:assert/strict';
import type { Claim, ClaimOutcome, CompletedRecord, FoundRecord, IdempotencyStore, StoredResponse } from '../store/idempotency-store.js';
import type { CallWindow } from './call-window.js';

type Found = FoundRecord | ClaimOutcome | undefined;
type InFlight = Extract<FoundRecord, { status: 'in_flight' }>;

function describeOutcome(outcome: Found): string {
  return outcome === undefined ? 'no record' : `a record with status "${outcome.status}"`;
}

/** The claim, asserting that this caller won the key. */
export function claimedOf(outcome: ClaimOutcome, situation: string): Claim {
  assert.ok(outcome.status === 'claimed', `${situation}: expected this caller to claim the key, got ${describeOutcome(outcome)}`);
  return outcome.claim;
}

/** The record, asserting that someone else holds the key and is still running. */
export function inFlightOf(outcome: Found, situation: string): InFlight {
  assert.ok(outcome?.status === 'in_flight', `${situation}: expected the in-flight record, got ${describeOutcome(outcome)}`);
  return outcome;
}

/** The record, asserting that the key holds a stored response. */
export function completedOf(outcome: Found, situation: string): CompletedRecord {
  assert.ok(outcome?.status === 'completed', `${situation}: expected the completed record, got ${describeOutcome(outcome)}`);
  return outcome;
}

/** Asserts status, headers and every body byte, without printing a megabyte when they differ. */
export function assertSameResponse(actual: StoredResponse, expected: StoredResponse, situation: string): void {
  assert.equal(actual.status, expected.status, `${situation}: the status changed`);
  assert.deepEqual(plainHeaders(actual.headers), plainHeaders(expected.headers), `${situation}: the headers changed`);
  assert.ok(Buffer.isBuffer(actual.body), `${situation}: the body is not a Buffer`);
  assert.equal(actual.body.length, expected.body.length, `${situation}: the body has ${actual.body.length} bytes, not ${expected.body.length}`);
  if (actual.body.equals(expected.body)) return;
  const firstDifference = actual.body.findIndex((byte, index) => byte !== expected.body[index]);
  assert.equal(firstDifference, -1, `${situation}: the body differs first at byte ${firstDifference}`);
}

/** Asserts that inspect finds the key completed with exactly `expected`. */
export async function assertStoredResponse(
  store: IdempotencyStore,
  scope: { readonly account: string; readonly key: string },
  expected: StoredResponse,
  situation: string,
): Promise<void> {
  assertSameResponse(completedOf(await store.inspect(scope.account, scope.key), situation).response, expected, situation);
}

// Rebuilt as plain objects: a store may hand back headers made by a driver, another realm or
// Object.create(null); only names, values and which values are lists matter.
function plainHeaders(headers: StoredResponse['headers']): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? [...value] : value]));
}

/**
 * Asserts that a remaining time the store reported (at some instant of `readBy`) fits a lifetime it
 * was given (at some instant of `setBy`): it counts down in ms on the store's clock, from the moment
 * of that read, and is not a date.
 */
export function assertRemainingPlausible(
  remainingMs: number,
  lifetimeMs: number,
  setBy: CallWindow,
  readBy: CallWindow,
  slackMs: number,
  situation: string,
): void {
  const mostElapsedMs = readBy.answeredAt - setBy.sentAt;
  const leastElapsedMs = Math.max(0, readBy.sentAt - setBy.answeredAt);
  assert.ok(Number.isFinite(remainingMs), `${situation}: the remaining time is ${remainingMs}, not a number of ms`);
  assert.ok(
    remainingMs >= lifetimeMs - mostElapsedMs - slackMs && remainingMs <= lifetimeMs - leastElapsedMs + slackMs,
    `${situation}: ${remainingMs} ms remaining of ${lifetimeMs} ms set ${Math.round(leastElapsedMs)} to ${Math.round(mostElapsedMs)} ms ` +
      "before the read (is it counted in ms on the store's clock, as of the read, rather than a date or an earlier read's value?)",
  );
}

/**
 * Asserts that a remaining time fell by at least the time waited between two reads: a write that
 * moved the end later would leave it close to where it was.
 */
export function assertEndDidNotMove(before: number, after: number, waitedMs: number, slackMs: number, situation: string): void {
  assert.ok(
    after <= before - waitedMs + slackMs,
    `${situation}: ${before} ms remained, then ${after} ms after waiting ${waitedMs} ms: the end was moved later`,
  );
}

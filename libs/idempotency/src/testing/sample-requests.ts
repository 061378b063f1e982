import { randomBytes, randomUUID } from 'node:crypto';
import type { ClaimRequest, StoredResponse } from '../store/idempotency-store.js';
import type { ContractContext } from './contract-case.js';

/** A fingerprint as the library makes them: 64 hex digits (SHA-256 or HMAC). */
export function newFingerprint(): string {
  return randomBytes(32).toString('hex');
}

/** An account no other case and no earlier run uses, so a case sees only its own records. */
export function newAccount(): string {
  return `contract-${randomUUID()}`;
}

/** A claim of a fresh (account, key), living long unless the case says otherwise. */
export function newClaimRequest(context: ContractContext, overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return {
    account: newAccount(),
    key: randomUUID(),
    fingerprint: newFingerprint(),
    ttlMs: context.longLifetimeMs,
    leaseMs: context.longLifetimeMs,
    route: 'POST /store-contract',
    ...overrides,
  };
}

/** A small JSON response whose body names `label`, so a case can tell whose response it reads. */
export function jsonResponse(label: string, status = 201): StoredResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', location: `/things/${encodeURIComponent(label)}` },
    body: Buffer.from(JSON.stringify({ label })),
  };
}

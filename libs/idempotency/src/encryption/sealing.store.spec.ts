import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { EntityManager } from 'typeorm';
import type {
  AtomicUnit,
  Claim,
  ClaimOutcome,
  ClaimRequest,
  FoundRecord,
  IdempotencyStore,
  StoredResponse,
} from '../store/idempotency-store.js';
import { Keyring } from './keyring.js';
import { EnvelopeOpenError } from './sealed-envelope.js';
import { SealingStore } from './sealing.store.js';

/** A store that keeps what it is given, as a database would: the rows a test can read and change. */
function recordingStore() {
  const rows = new Map<string, StoredResponse | 'in_flight'>();
  const found = (id: string): FoundRecord | undefined => {
    const row = rows.get(id);
    if (row === undefined) return undefined;
    if (row === 'in_flight') return { status: 'in_flight', fingerprint: 'fp', leaseRemainingMs: 1000 };
    return { status: 'completed', fingerprint: 'fp', response: row, expiresInMs: 60_000 };
  };
  const complete = async (claim: Claim, response: StoredResponse): Promise<boolean> => {
    rows.set(`${claim.account}/${claim.key}`, response);
    return true;
  };
  const store: IdempotencyStore = {
    claim: async (request: ClaimRequest): Promise<ClaimOutcome> => {
      const id = `${request.account}/${request.key}`;
      const existing = found(id);
      if (existing) return existing;
      rows.set(id, 'in_flight');
      return { status: 'claimed', claim: { account: request.account, key: request.key, fingerprint: 'fp', ownerToken: 't' } };
    },
    inspect: async (account, key) => found(`${account}/${key}`),
    complete,
    release: async () => true,
    renew: async () => true,
    purgeExpired: async () => 0,
    beginAtomic: (): AtomicUnit => ({
      manager: {} as EntityManager,
      claim: (request) => store.claim(request),
      renew: async () => true,
      commitWith: complete,
      commitReleasing: async () => undefined,
      rollback: async () => undefined,
    }),
  };
  return { store, rows };
}

const fingerprintKey = randomBytes(32);
const keyringOf = (...keys: Buffer[]): Keyring => Keyring.from({ keys, fingerprintKey });
const requestOf = (key: string, account = 'acme'): ClaimRequest => ({
  account,
  key,
  fingerprint: 'fp',
  ttlMs: 60_000,
  leaseMs: 60_000,
  route: 'POST /v1/payments',
});
const response: StoredResponse = {
  status: 201,
  headers: { 'content-type': 'application/json; charset=utf-8', location: '/v1/payments/pay_marker' },
  body: Buffer.from('{"id":"pay_marker","customerId":"cus_marker"}'),
};

async function completeThrough(store: IdempotencyStore, key: string, account = 'acme'): Promise<void> {
  const outcome = await store.claim(requestOf(key, account));
  if (outcome.status !== 'claimed') throw new Error(`expected a claim, got ${outcome.status}`);
  await store.complete(outcome.claim, response, 60_000);
}

function rowOf(rows: Map<string, StoredResponse | 'in_flight'>, id: string): StoredResponse {
  const row = rows.get(id);
  if (row === undefined || row === 'in_flight') throw new Error(`no completed row ${id}`);
  return row;
}

/** What a claim rejects with; fails the test if it resolves. */
async function claimFailure(store: IdempotencyStore, key: string, account = 'acme'): Promise<EnvelopeOpenError> {
  const error: unknown = await store.claim(requestOf(key, account)).then(
    () => new Error('expected the record not to open, and it opened'),
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(EnvelopeOpenError);
  return error as EnvelopeOpenError;
}

describe('SealingStore (R26)', () => {
  const keyring = keyringOf(randomBytes(32));

  it('hands the wrapped store no plaintext of the body or headers (R26)', async () => {
    const { store, rows } = recordingStore();
    await completeThrough(new SealingStore(store, keyring), 'k');
    const row = rowOf(rows, 'acme/k');
    expect(row.headers).toEqual({});
    expect(row.status).toBe(201);
    expect(row.body.includes(Buffer.from('marker'))).toBe(false);
  });

  it('opens the record on claim and on inspect to the response as it was sent (R9, R26)', async () => {
    const { store } = recordingStore();
    const sealing = new SealingStore(store, keyring);
    await completeThrough(sealing, 'k');
    const claimed = await sealing.claim(requestOf('k'));
    const inspected = await sealing.inspect('acme', 'k');
    for (const found of [claimed, inspected]) {
      expect(found?.status).toBe('completed');
      if (found?.status !== 'completed') continue;
      expect(found.response).toEqual(response);
      expect(found.response.body.equals(response.body)).toBe(true);
      expect(found.fingerprint).toBe('fp');
    }
  });

  it('seals what an atomic unit commits, and opens it when a later unit claims the key (R22, R26)', async () => {
    const { store, rows } = recordingStore();
    const sealing = new SealingStore(store, keyring);
    const unit = sealing.beginAtomic();
    const outcome = await unit.claim(requestOf('atomic'));
    if (outcome.status !== 'claimed') throw new Error('expected a claim');
    await unit.commitWith(outcome.claim, response, 60_000);
    expect(rowOf(rows, 'acme/atomic').body.includes(Buffer.from('marker'))).toBe(false);
    const replayed = await sealing.beginAtomic().claim(requestOf('atomic'));
    expect(replayed.status === 'completed' && replayed.response).toEqual(response);
  });

  it('passes claims and in-flight records through untouched (R11, R26)', async () => {
    const { store } = recordingStore();
    const sealing = new SealingStore(store, keyring);
    expect((await sealing.claim(requestOf('k'))).status).toBe('claimed');
    expect(await sealing.claim(requestOf('k'))).toEqual({ status: 'in_flight', fingerprint: 'fp', leaseRemainingMs: 1000 });
    expect(await sealing.inspect('acme', 'none')).toBeUndefined();
  });

  it('refuses a record whose stored body was changed, naming account, key and key id (R26)', async () => {
    const { store, rows } = recordingStore();
    const sealing = new SealingStore(store, keyring);
    await completeThrough(sealing, 'k');
    const row = rowOf(rows, 'acme/k');
    row.body[row.body.length - 1] ^= 0x01;
    const error = await claimFailure(sealing, 'k');
    expect(error.message).toContain('key k (account "acme")');
    expect(error.keyId).toBe(keyring.sealing.idHex);
    await expect(sealing.inspect('acme', 'k')).rejects.toThrow(EnvelopeOpenError);
  });

  it('refuses a record whose status was changed in place (R26)', async () => {
    const { store, rows } = recordingStore();
    const sealing = new SealingStore(store, keyring);
    await completeThrough(sealing, 'k');
    rows.set('acme/k', { ...rowOf(rows, 'acme/k'), status: 200 });
    await claimFailure(sealing, 'k');
  });

  it("refuses another record's sealed bytes copied into this one, so no account replays another's response (R5, R26)", async () => {
    const { store, rows } = recordingStore();
    const sealing = new SealingStore(store, keyring);
    await completeThrough(sealing, 'k', 'globex');
    await completeThrough(sealing, 'k', 'acme');
    rows.set('acme/k', rowOf(rows, 'globex/k'));
    await claimFailure(sealing, 'k', 'acme');
  });

  it('refuses a record stored in the clear (encryption turned on later) (R26)', async () => {
    const { store } = recordingStore();
    await completeThrough(store, 'k');
    expect((await claimFailure(new SealingStore(store, keyring), 'k')).message).toMatch(/not a sealed value/);
  });

  it('opens records of the old key after rotation to [new, old], and refuses them under [new] alone (R26)', async () => {
    const { store } = recordingStore();
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    await completeThrough(new SealingStore(store, keyringOf(oldKey)), 'k');
    const rotated = await new SealingStore(store, keyringOf(newKey, oldKey)).claim(requestOf('k'));
    expect(rotated.status === 'completed' && rotated.response).toEqual(response);
    const error = await claimFailure(new SealingStore(store, keyringOf(newKey)), 'k');
    expect(error.keyId).toBe(keyringOf(oldKey).sealing.idHex);
  });

  it('tells atomic mode apart as the wrapped store does (R22)', () => {
    const { store } = recordingStore();
    expect(new SealingStore(store, keyring).atomicUnsupportedReason()).toBeUndefined();
    const { beginAtomic: _, ...plain } = store;
    expect(new SealingStore(plain, keyring).atomicUnsupportedReason()).toMatch(/no transactions/);
  });
});

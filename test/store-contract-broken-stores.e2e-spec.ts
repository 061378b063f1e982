import { describe, expect, it } from '@jest/globals';
import type { IdempotencyStore } from 'nestjs-idempotency';
import { describeStoreContract, type ContractStep } from 'nestjs-idempotency/testing';
import {
  CaseFoldingStore,
  ExpiryAsDateStore,
  ExpiryRefreshingClaimStore,
  JoinedScopeStore,
  LeaseCheckingCompleteStore,
  LeaseRefreshingClaimStore,
  LeaseRenewingInspectStore,
  LivePurgingStore,
  NeverExpiringStore,
  ReadThenWriteClaimStore,
  ReadThenWriteTakeoverStore,
  RewritableCompletedStore,
  TextBodyStore,
  TrailingSpaceBlindStore,
  TtlBoundClaimStore,
  UnboundedPurgeStore,
  UnfencedStore,
} from './support/broken-stores.js';
import { InMemoryIdempotencyStore } from './support/in-memory-store.js';

/** The suite as registered with a runner that only collects, so a test can run one case itself. */
interface CollectedContract {
  readonly beforeAll: ContractStep[];
  readonly afterAll: ContractStep[];
  readonly cases: Map<string, ContractStep>;
}

function collectContract(createStore: () => IdempotencyStore): CollectedContract {
  const collected: CollectedContract = { beforeAll: [], afterAll: [], cases: new Map() };
  describeStoreContract(
    'collected',
    // The in-memory stores keep exact time, so the suite's waits can be short.
    { createStore: () => ({ store: createStore() }), shortLifetimeMs: 300, clockSlackMs: 100 },
    {
      describe: (_name, body) => body(),
      it: (name, test) => collected.cases.set(name, test),
      beforeAll: (hook) => collected.beforeAll.push(hook),
      afterAll: (hook) => collected.afterAll.push(hook),
    },
  );
  return collected;
}

/** Runs the one case whose name starts with `namePrefix` against a fresh store, with the suite's hooks. */
async function runCase(createStore: () => IdempotencyStore, namePrefix: string): Promise<void> {
  const contract = collectContract(createStore);
  const matching = [...contract.cases].filter(([name]) => name.startsWith(namePrefix));
  if (matching.length !== 1) throw new Error(`${matching.length} contract cases are named "${namePrefix}..."`);
  for (const hook of contract.beforeAll) await hook();
  try {
    await matching[0][1]();
  } finally {
    for (const hook of contract.afterAll) await hook();
  }
}

type BrokenStore = new () => IdempotencyStore;

const CASE_NAMES = [...collectContract(() => new InMemoryIdempotencyStore()).cases.keys()];

/** [the bug, the broken store, the start of the name of the case that guards against it] */
const BROKEN_STORES: ReadonlyArray<readonly [string, BrokenStore, string]> = [
  ['a claim that reads, awaits, then writes', ReadThenWriteClaimStore, 'of 20 concurrent claims of one free key exactly one wins'],
  ['a takeover that reads, awaits, then writes', ReadThenWriteTakeoverStore, 'after the lease of an in-flight claim ends, exactly one'],
  ['complete, renew and release without the owner token', UnfencedStore, 'an owner whose claim was taken over is fenced'],
  ["an owner's writes to its completed record", RewritableCompletedStore, 'a completed record is final'],
  ["a claim that refreshes a completed record's expiry", ExpiryRefreshingClaimStore, 'a claim of a completed key returns the stored record and changes nothing'],
  ["a retry's claim that extends the lease", LeaseRefreshingClaimStore, 'a claim of an in-flight key changes nothing'],
  ['an in-flight record that dies at its ttl', TtlBoundClaimStore, 'an in-flight claim is not taken over'],
  ['a complete that checks the lease', LeaseCheckingCompleteStore, 'complete does not check the lease'],
  ['an inspect that renews the lease', LeaseRenewingInspectStore, 'inspect changes nothing'],
  ['a completed record that never expires', NeverExpiringStore, 'a completed record is replayed before its ttl'],
  ['expiresInMs reported as a date', ExpiryAsDateStore, 'a completed record is replayed before its ttl'],
  ['a purge that ignores its limit', UnboundedPurgeStore, 'purgeExpired(3) deletes at most 3'],
  ['a purge of a running claim past its ttl', LivePurgingStore, 'purgeExpired(3) deletes at most 3'],
  ['a body kept as UTF-8 text', TextBodyStore, 'a 1 MiB body, all 256 byte values'],
  ['keys compared case-insensitively', CaseFoldingStore, 'accounts and keys with unusual characters stay apart'],
  ['trailing spaces ignored, as a PAD SPACE collation does', TrailingSpaceBlindStore, 'accounts and keys with unusual characters stay apart'],
  ['account and key joined with a separator', JoinedScopeStore, 'the same key in two accounts is two records'],
];

describe('the store contract suite (R29)', () => {
  it.each(CASE_NAMES)('passes the in-memory reference store: %s', async (name) => {
    await runCase(() => new InMemoryIdempotencyStore(), name);
  });

  it.each(BROKEN_STORES.map(([bug, Store, caseName]) => [Store.name, bug, caseName, Store] as const))(
    'fails %s, a store with %s, on the case "%s..."',
    async (_name, _bug, caseName, Store) => {
      await expect(runCase(() => new Store(), caseName)).rejects.toMatchObject({ code: 'ERR_ASSERTION' });
    },
  );
});

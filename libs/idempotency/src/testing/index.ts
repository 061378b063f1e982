/** Registers the store contract suite (R29) for an `IdempotencyStore` under Jest, Vitest or `node:test`. */
export { describeStoreContract } from './describe-store-contract.js';
/** The runner's `describe`, `it` and once-per-suite hooks, which the suite registers itself with. */
export type { ContractRunner } from './contract-runner.js';
/** A hook or test body the suite hands to the runner. */
export type { ContractStep } from './contract-runner.js';
/** How to open the store under test, and the lease and ttl the suite may use with it. */
export type { StoreContractOptions } from './store-contract.options.js';
/** An opened store under test and how to close it. */
export type { StoreFixture } from './store-contract.options.js';

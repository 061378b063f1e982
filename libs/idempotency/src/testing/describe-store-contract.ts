import { STORE_CONTRACT_CASES } from './contract-cases.js';
import type { ContractContext } from './contract-case.js';
import { runnerHooksOf, type ContractRunner } from './contract-runner.js';
import { contractTimingOf, type StoreContractOptions, type StoreFixture } from './store-contract.options.js';

/**
 * Registers the store contract (R29) as one `describe` block of the caller's runner: the store is
 * opened once before the first case and torn down after the last; each case is one test.
 */
export function describeStoreContract(name: string, options: StoreContractOptions, runner: ContractRunner): void {
  const timing = contractTimingOf(options);
  const hooks = runnerHooksOf(runner);
  runner.describe(name, () => {
    let fixture: StoreFixture | undefined;
    hooks.beforeAll(async () => {
      fixture = await options.createStore();
    });
    hooks.afterAll(async () => {
      await fixture?.teardown?.();
    });
    const contextOf = (): ContractContext => {
      // The runner reports createStore's own error from the hook; this only keeps cases from running without a store.
      if (!fixture) throw new Error(`describeStoreContract: no store for "${name}": createStore did not finish`);
      return { ...timing, store: fixture.store };
    };
    for (const contractCase of STORE_CONTRACT_CASES) {
      runner.it(contractCase.name, () => contractCase.run(contextOf()));
    }
  });
}

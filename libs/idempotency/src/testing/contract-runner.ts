/** A hook or test body the suite registers; it settles when the step is done. */
export type ContractStep = () => Promise<void>;

/**
 * The test runner's own functions, so the suite runs under any of them: Jest or Vitest
 * (`{ describe, it, beforeAll, afterAll }`) and `node:test` (`{ describe, it, before, after }`).
 */
export interface ContractRunner {
  describe(name: string, body: () => void): unknown;
  it(name: string, test: ContractStep): unknown;
  beforeAll?(hook: ContractStep): unknown;
  afterAll?(hook: ContractStep): unknown;
  before?(hook: ContractStep): unknown;
  after?(hook: ContractStep): unknown;
}

export interface RunnerHooks {
  beforeAll(hook: ContractStep): void;
  afterAll(hook: ContractStep): void;
}

/** The runner's once-per-suite hooks, under whichever name it gives them. */
export function runnerHooksOf(runner: ContractRunner): RunnerHooks {
  const beforeAll = runner.beforeAll ?? runner.before;
  const afterAll = runner.afterAll ?? runner.after;
  if (!beforeAll || !afterAll) {
    throw new TypeError(
      'describeStoreContract: the runner needs once-per-suite hooks to open and close the store: ' +
        'pass { describe, it, beforeAll, afterAll } (Jest, Vitest) or { describe, it, before, after } (node:test)',
    );
  }
  return {
    beforeAll: (hook) => void beforeAll.call(runner, hook),
    afterAll: (hook) => void afterAll.call(runner, hook),
  };
}

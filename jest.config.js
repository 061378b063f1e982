/** Jest in ESM mode (Nest 12 is ESM-only): unit specs beside the library code, end-to-end suites in test/. */
const shared = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^nestjs-idempotency$': '<rootDir>/libs/idempotency/src/index.ts',
    '^nestjs-idempotency/([a-z-]+)$': '<rootDir>/libs/idempotency/src/$1/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  testEnvironment: 'node',
};

export default {
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  reporters: ['default', '<rootDir>/test/support/summary-reporter.mjs'],
  // Suites share two cores with MariaDB and the app processes they start: give tests room.
  testTimeout: 60_000,
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/libs/**/*.spec.ts'] },
    { ...shared, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'], testTimeout: 60_000 },
  ],
};

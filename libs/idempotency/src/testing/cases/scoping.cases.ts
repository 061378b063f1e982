import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ContractCase, ContractContext } from '../contract-case.js';
import { claimedOf, completedOf } from '../outcome-assertions.js';
import { jsonResponse, newAccount, newClaimRequest } from '../sample-requests.js';

interface Scope {
  readonly account: string;
  readonly key: string;
}

const MAX_KEY_LENGTH = 255;

/** Keys a store could confuse: by collation, by escaping, by LIKE patterns, by truncation. */
const UNUSUAL_KEYS: readonly string[] = [
  'ключ-🔑-键',
  'e\u0301', // "é" decomposed
  '\u00e9', // "é" precomposed: another key, byte for byte
  `it's "quoted"`,
  '100%',
  '100_',
  '1000',
  'a\\b',
  'a\\\\b',
  '\\',
  'Key',
  'key',
  'KEY',
  'key ',
  ' key',
  `${'x'.repeat(MAX_KEY_LENGTH - 1)}a`,
  `${'x'.repeat(MAX_KEY_LENGTH - 1)}b`,
  "'; DROP TABLE idempotency_records; --",
  'checkout:attempt-1',
];

/** Claims every scope, completes each with a response naming it, then reads each back. */
async function assertKeptApart(context: ContractContext, scopes: readonly Scope[]): Promise<void> {
  const { store } = context;
  const label = (scope: Scope): string => JSON.stringify([scope.account, scope.key]);
  for (const scope of scopes) {
    const request = newClaimRequest(context, scope);
    const claim = claimedOf(await store.claim(request), `the first claim of ${label(scope)}`);
    assert.equal(await store.complete(claim, jsonResponse(label(scope)), request.ttlMs), true, `the owner of ${label(scope)} could not complete`);
  }
  for (const scope of scopes) {
    const expected = jsonResponse(label(scope)).body.toString();
    const found = completedOf(await store.inspect(scope.account, scope.key), `inspect of ${label(scope)}`);
    assert.equal(found.response.body.toString(), expected, `inspect of ${label(scope)} read another record`);
    const replay = completedOf(await store.claim(newClaimRequest(context, scope)), `a replay of ${label(scope)}`);
    assert.equal(replay.response.body.toString(), expected, `a replay of ${label(scope)} read another record`);
  }
}

export const unusualKeysCase: ContractCase = {
  name:
    'accounts and keys with unusual characters stay apart: unicode, quotes, %, _, backslashes, case, ' +
    `surrounding spaces, ${MAX_KEY_LENGTH}-character keys (R29, R5, R6)`,
  async run(context) {
    const account = `${newAccount()} ünïcødé 'single' "double" %_\\ 🔑`;
    await assertKeptApart(context, UNUSUAL_KEYS.map((key) => ({ account, key })));
  },
};

export const keyPerAccountCase: ContractCase = {
  name: 'the same key in two accounts is two records, however alike the accounts are, the anonymous one included (R29, R5, R6)',
  async run(context) {
    const account = newAccount();
    const key = randomUUID();
    const alike = ['', account, account.toUpperCase(), `${account} `, `${account}%`, `${account}_`, `${account}\\`];
    // An (account, key) pair joined into one string with a separator would make these pairs one.
    const joined = [':', '/', '|'].flatMap((separator) => [
      { account: `${account}${separator}a`, key },
      { account, key: `a${separator}${key}` },
    ]);
    await assertKeptApart(context, [...alike.map((name) => ({ account: name, key })), ...joined]);
  },
};

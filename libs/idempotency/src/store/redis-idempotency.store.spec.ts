import { describe, expect, it } from '@jest/globals';
import type { ClaimRequest } from './idempotency-store.js';
import {
  DEFAULT_REDIS_KEY_PREFIX,
  RedisIdempotencyStore,
  redisRecordKey,
  type RedisIdempotencyClient,
  type RedisIdempotencyPipeline,
} from './redis-idempotency.store.js';
import { CLAIM_SCRIPT, COMPLETE_SCRIPT, RELEASE_SCRIPT } from './redis-scripts.js';
import { StoreReplicationError } from './store-replication.error.js';

describe('redisRecordKey', () => {
  it('keeps ("a:b", "c") and ("a", "b:c") apart, which a plain separator would join (R5, R6)', () => {
    expect(redisRecordKey('p:', 'a:b', 'c')).not.toBe(redisRecordKey('p:', 'a', 'b:c'));
  });

  it('keeps an account that ends like a length prefix apart from the one it imitates (R5, R6)', () => {
    const pairs: Array<readonly [string, string]> = [
      ['', '3:abc:k'],
      ['3:abc', 'k'],
      ['3', 'abc:k'],
      ['acct', 'k'],
      ['acct:', 'k'],
      ['acct', ':k'],
    ];
    const keys = pairs.map(([account, key]) => redisRecordKey('p:', account, key));
    expect(new Set(keys).size).toBe(pairs.length);
  });

  it('counts the account in UTF-8 bytes, the unit Redis stores, so unicode accounts stay apart (R5)', () => {
    expect(redisRecordKey('p:', 'ключ', 'k')).toBe('p:8:ключ:k');
    expect(redisRecordKey('p:', '🔑', 'k')).toBe('p:4:🔑:k');
    expect(redisRecordKey('p:', 'e\u0301', 'k')).not.toBe(redisRecordKey('p:', '\u00e9', 'k'));
  });

  it('starts every key with the prefix, "idempotency:" by default', () => {
    expect(redisRecordKey(DEFAULT_REDIS_KEY_PREFIX, 'acct_42', 'key-1')).toBe('idempotency:7:acct_42:key-1');
    expect(redisRecordKey('tenant-a/', '', 'key-1')).toBe('tenant-a/0::key-1');
  });
});

type Command = ReadonlyArray<string | Buffer | number>;

/**
 * A client that records what it is sent and answers each script by its SHA: the shapes of the
 * round trips are what these tests check; a real Redis (and Cluster) answers in test/.
 */
function recordingClient(replies: { script: (sha: string) => unknown; acknowledged: () => number }) {
  const single: Command[] = [];
  const pipelines: Command[][] = [];
  const client: RedisIdempotencyClient = {
    async callBuffer(...command: Array<string | Buffer | number>) {
      single.push(command);
      return replies.script(String(command[1]));
    },
    pipeline(): RedisIdempotencyPipeline {
      const queued: Command[] = [];
      const pipeline: RedisIdempotencyPipeline = {
        callBuffer(...command: Array<string | Buffer | number>) {
          queued.push(command);
          return pipeline;
        },
        async exec() {
          pipelines.push(queued);
          return queued.map((command): [Error | null, unknown] =>
            command[0] === 'WAIT' ? [null, replies.acknowledged()] : [null, replies.script(String(command[1]))],
          );
        },
      };
      return pipeline;
    },
  };
  return { client, single, pipelines };
}

const CLAIM: ClaimRequest = { account: 'acme', key: 'k-1', fingerprint: 'f'.repeat(64), ttlMs: 60_000, leaseMs: 60_000, route: 'POST /x' };
const RESPONSE = { status: 201, headers: {}, body: Buffer.from('{}') };

describe('RedisIdempotencyStore with waitForReplicas (R30)', () => {
  it('sends WAIT right after each claim, completion and release, in the same pipeline, never with timeout 0 (which waits forever)', async () => {
    const { client, pipelines, single } = recordingClient({ script: (sha) => (sha === CLAIM_SCRIPT.sha ? [1] : 1), acknowledged: () => 1 });
    const store = new RedisIdempotencyStore(client, { waitForReplicas: 1, timeoutMs: 1000 });

    const outcome = await store.claim(CLAIM);
    if (outcome.status !== 'claimed') throw new Error('expected a claim');
    await store.complete(outcome.claim, RESPONSE, 60_000);
    await store.release(outcome.claim);

    expect(single).toEqual([]);
    expect(pipelines.map((sent) => sent.map((command) => `${command[0]} ${command[0] === 'WAIT' ? command[1] : command[1] === CLAIM_SCRIPT.sha ? 'claim' : command[1] === COMPLETE_SCRIPT.sha ? 'complete' : 'release'}`))).toEqual([
      ['EVALSHA claim', 'WAIT 1'],
      ['EVALSHA complete', 'WAIT 1'],
      ['EVALSHA release', 'WAIT 1'],
    ]);
    for (const [, wait] of pipelines) {
      expect(Number(wait[2])).toBeGreaterThanOrEqual(1);
      expect(Number(wait[2])).toBeLessThanOrEqual(800);
    }
  });

  it('releases a claim too few replicas acknowledged and refuses it, so the handler never runs on it (R30, R18)', async () => {
    const { client, single } = recordingClient({ script: (sha) => (sha === CLAIM_SCRIPT.sha ? [1] : 1), acknowledged: () => 0 });
    const store = new RedisIdempotencyStore(client, { waitForReplicas: 1, timeoutMs: 200 });

    const refused = await store.claim(CLAIM).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(refused).toBeInstanceOf(StoreReplicationError);
    expect(refused).toMatchObject({ operation: 'claim', acknowledged: 0, required: 1 });
    expect(single.map((command) => command[1])).toEqual([RELEASE_SCRIPT.sha]);
  });

  it('sends a completion again while too few replicas hold it, and reports it done once they do (R30, R20a)', async () => {
    let waits = 0;
    const { client, pipelines } = recordingClient({
      // The second send finds this owner's completion already stored: 2.
      script: (sha) => (sha === COMPLETE_SCRIPT.sha ? (waits === 0 ? 1 : 2) : [1]),
      acknowledged: () => (++waits < 3 ? 0 : 1),
    });
    const store = new RedisIdempotencyStore(client, { waitForReplicas: 1, timeoutMs: 2000 });
    const claim = { account: 'acme', key: 'k-1', fingerprint: 'f', ownerToken: 'owner' };

    expect(await store.complete(claim, RESPONSE, 60_000)).toBe(true);
    expect(pipelines).toHaveLength(3);
  });

  it('refuses a completion still short of replicas when its time is spent, naming how many acknowledged (R30)', async () => {
    const { client } = recordingClient({ script: () => 1, acknowledged: () => 1 });
    const store = new RedisIdempotencyStore(client, { waitForReplicas: 2, timeoutMs: 300 });
    const claim = { account: 'acme', key: 'k-1', fingerprint: 'f', ownerToken: 'owner' };

    await expect(store.complete(claim, RESPONSE, 60_000)).rejects.toMatchObject({ name: 'StoreReplicationError', operation: 'complete', acknowledged: 1, required: 2 });
  });

  it('refuses at construction a negative or fractional count, and a client without pipeline()', () => {
    const callOnly: RedisIdempotencyClient = { callBuffer: async () => undefined };
    expect(() => new RedisIdempotencyStore(callOnly, { waitForReplicas: -1 })).toThrow(/waitForReplicas must be a whole number/);
    expect(() => new RedisIdempotencyStore(callOnly, { waitForReplicas: 1.5 })).toThrow(/waitForReplicas must be a whole number/);
    expect(() => new RedisIdempotencyStore(callOnly, { waitForReplicas: 1 })).toThrow(/needs a Redis client with pipeline\(\)/);
    expect(() => new RedisIdempotencyStore(callOnly, { waitForReplicas: 0 })).not.toThrow();
  });
});

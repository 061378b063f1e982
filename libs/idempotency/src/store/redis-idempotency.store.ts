import { randomUUID } from 'node:crypto';
import type {
  Claim,
  ClaimOutcome,
  ClaimRequest,
  FoundRecord,
  IdempotencyStore,
  StoredResponse,
} from './idempotency-store.js';
import {
  CLAIM_SCRIPT,
  COMPLETE_SCRIPT,
  INSPECT_SCRIPT,
  RELEASE_SCRIPT,
  RENEW_SCRIPT,
  type RedisScript,
} from './redis-scripts.js';
import { DEFAULT_STORE_TIMEOUT_MS, StoreTimeoutError } from './store-timeout.js';

/**
 * What the store needs of a Redis client: an ioredis `Redis` or `Cluster` fits. Written out rather
 * than imported from ioredis, so that neither the library's code nor its types need ioredis
 * installed by apps that do not use this store.
 */
export interface RedisIdempotencyClient {
  callBuffer(command: string, ...args: Array<string | Buffer | number>): Promise<unknown>;
}

/** Settings of the Redis store. */
export interface RedisIdempotencyStoreOptions {
  /** Put before every record's Redis key, to keep the records apart from other data. Default `idempotency:`. */
  keyPrefix?: string;
  /**
   * Every store call settles within this many ms (R18): a Redis that accepts connections but never
   * answers, or a client that queues commands while it reconnects, fails the request with 503
   * instead of hanging it. Default 5000.
   */
  timeoutMs?: number;
}

export const DEFAULT_REDIS_KEY_PREFIX = 'idempotency:';

/**
 * A store on Redis (an ioredis 5 client; Redis 5 or later): one hash per (account, key), each
 * operation one Lua script, so Redis decides every race by itself, on its own clock (R19), and
 * deletes each record itself when its life ends. Pass the client your app created:
 *
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
 * IdempotencyModule.forRoot({ store: new RedisIdempotencyStore(redis, { timeoutMs: 2000 }) })
 * ```
 *
 * Client settings: by default ioredis queues commands while disconnected and retries each one
 * through 20 reconnections, so every request would wait out the store's timeout. With
 * `enableOfflineQueue: false` a command fails at once while there is no connection (requests that
 * arrive before the first connection is ready get 503 too), and `maxRetriesPerRequest: 1` fails a
 * command caught by a dropped connection after one reconnect attempt. The store's own timeout
 * bounds every call whatever the client does. A `keyPrefix` set on the client applies as well.
 *
 * Server settings: a record Redis loses is a request that may run twice. Use
 * `maxmemory-policy noeviction` (every record has an expiry, so the `volatile-*` policies would
 * evict exactly these keys), and persistence that fits the promise (`appendonly yes`); a failover
 * to a replica can lose the last writes, as Redis replication is asynchronous.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly keyPrefix: string;
  private readonly timeoutMs: number;

  constructor(
    private readonly redis: RedisIdempotencyClient,
    options: RedisIdempotencyStoreOptions = {},
  ) {
    this.keyPrefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  }

  async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    const ownerToken = randomUUID();
    const reply = await this.run(CLAIM_SCRIPT, request.account, request.key, [
      request.fingerprint,
      ownerToken,
      request.route,
      wholeMs(request.leaseMs),
      wholeMs(request.ttlMs),
    ]);
    const row = replyRow(reply);
    if (!row) throw new Error('nestjs-idempotency: the Redis claim script returned no record');
    if (row[0] === 1) {
      const { account, key, fingerprint } = request;
      return { status: 'claimed', claim: { account, key, fingerprint, ownerToken } };
    }
    return foundRecordOf(row);
  }

  async inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    const row = replyRow(await this.run(INSPECT_SCRIPT, account, key, []));
    return row ? foundRecordOf(row) : undefined;
  }

  async complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const headers = JSON.stringify(response.headers);
    const args = [claim.ownerToken, response.status, headers, response.body, wholeMs(ttlMs)];
    return (await this.run(COMPLETE_SCRIPT, claim.account, claim.key, args)) === 1;
  }

  async release(claim: Claim): Promise<boolean> {
    return (await this.run(RELEASE_SCRIPT, claim.account, claim.key, [claim.ownerToken])) === 1;
  }

  async renew(claim: Claim, leaseMs: number): Promise<boolean> {
    return (await this.run(RENEW_SCRIPT, claim.account, claim.key, [claim.ownerToken, wholeMs(leaseMs)])) === 1;
  }

  /**
   * Always 0, without a round trip: Redis deletes each record by its own expiry (PEXPIREAT) at the
   * moment this method could first have deleted it, a completed record at the end of its ttl, an
   * in-flight one once its lease and its ttl have both ended. Redis expires keys a few at a time
   * (on access, and in a sampled background cycle), so no step holds the server for long (R21).
   */
  async purgeExpired(_limit: number): Promise<number> {
    return 0;
  }

  atomicUnsupportedReason(): string {
    return (
      'the Redis store keeps idempotency records in Redis, outside the database the handlers write to, so a ' +
      "handler's writes and its stored response cannot commit in one transaction."
    );
  }

  private run(script: RedisScript, account: string, key: string, args: Array<string | Buffer | number>): Promise<unknown> {
    return this.within(this.evaluate(script, redisRecordKey(this.keyPrefix, account, key), args));
  }

  private async evaluate(script: RedisScript, recordKey: string, args: Array<string | Buffer | number>): Promise<unknown> {
    try {
      return await this.redis.callBuffer('EVALSHA', script.sha, 1, recordKey, ...args);
    } catch (error) {
      // The server's script cache is empty after a restart or SCRIPT FLUSH: send the script itself, once.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.redis.callBuffer('EVAL', script.lua, 1, recordKey, ...args);
    }
  }

  /** Settles with `working`, or fails with StoreTimeoutError after the timeout (R18). */
  private async within<T>(working: Promise<T>): Promise<T> {
    // The command may still fail after the timeout, when the client gives up on it.
    working.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreTimeoutError(this.timeoutMs)), this.timeoutMs);
    });
    try {
      return await Promise.race([working, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The Redis key of (account, key): the prefix, the account's length in UTF-8 bytes, the account and
 * the key. The length keeps ("a:b", "c") and ("a", "b:c") apart, whatever characters either holds.
 */
export function redisRecordKey(prefix: string, account: string, key: string): string {
  return `${prefix}${Buffer.byteLength(account, 'utf8')}:${account}:${key}`;
}

type ReplyRow = ReadonlyArray<unknown>;

function replyRow(reply: unknown): ReplyRow | undefined {
  if (reply === null || reply === undefined) return undefined;
  if (!Array.isArray(reply)) throw new Error('nestjs-idempotency: unexpected reply from a Redis store script');
  return reply;
}

/** Decodes {0, state, fingerprint, lease left, ttl left[, status, headers, body]}. */
function foundRecordOf(row: ReplyRow): FoundRecord {
  const [, state, fingerprint, leaseRemainingMs, expiresInMs, status, headers, body] = row;
  if (text(state) === 'completed') {
    return {
      status: 'completed',
      fingerprint: text(fingerprint),
      response: {
        status: Number(text(status)),
        headers: headers ? (JSON.parse(text(headers)) as Record<string, string | string[]>) : {},
        body: Buffer.isBuffer(body) ? body : Buffer.alloc(0),
      },
      expiresInMs: Number(expiresInMs),
    };
  }
  return { status: 'in_flight', fingerprint: text(fingerprint), leaseRemainingMs: Number(leaseRemainingMs) };
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** PEXPIREAT takes whole ms; a fractional duration from a caller is rounded up rather than refused. */
function wholeMs(ms: number): number {
  return Math.ceil(ms);
}

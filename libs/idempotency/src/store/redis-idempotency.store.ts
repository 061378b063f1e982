import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
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
import { StoreReplicationError } from './store-replication.error.js';
import { DEFAULT_STORE_TIMEOUT_MS, StoreTimeoutError } from './store-timeout.js';

/**
 * What the store needs of a Redis client: an ioredis `Redis` or `Cluster` fits. Written out rather
 * than imported from ioredis, so that neither the library's code nor its types need ioredis
 * installed by apps that do not use this store.
 */
export interface RedisIdempotencyClient {
  callBuffer(command: string, ...args: Array<string | Buffer | number>): Promise<unknown>;
  /** Needed with `waitForReplicas` only: a batch of commands written to one connection at once. */
  pipeline?(): RedisIdempotencyPipeline;
}

/** What the store needs of a client's pipeline (ioredis `Pipeline`): queued commands, one write, each reply or error. */
export interface RedisIdempotencyPipeline {
  callBuffer(command: string, ...args: Array<string | Buffer | number>): unknown;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
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
  /**
   * How many replicas must hold a claim, a completion or a release before the store reports it
   * done (R30). Each of these scripts is sent with `WAIT n` in one pipeline, so both reach the
   * same connection (on a Cluster, the master of the record's slot) and WAIT counts the replicas
   * that have this write; all waiting ends within 0.8 x `timeoutMs`. Too few in time: a claim is
   * released and refused with `StoreReplicationError` (503, the handler does not run); a completion
   * is sent again until enough replicas hold it within that time (a completion sent twice is
   * recognised by its owner), then refused with `StoreReplicationError` (503 instead of an answer a
   * failover could lose); a release throws it too. Renewals and reads do not wait. While a replica
   * is down every write waits out the whole time, and commands behind a WAIT on its connection wait
   * with it. Needs a client with `pipeline()` (ioredis `Redis`, `Cluster`). Default 0: no waiting.
   */
  waitForReplicas?: number;
}

export const DEFAULT_REDIS_KEY_PREFIX = 'idempotency:';

/** The share of the store's timeout its WAITs may use, leaving the rest for the round trips (and a release). */
const WAIT_SHARE_OF_TIMEOUT = 0.8;
/** Pause before sending again a write whose WAIT or redirect came back at once, so a failover is not hammered. */
const RESEND_PAUSE_MS = 50;

/** The replies to a script and to the WAIT sent with it. */
interface Replicated {
  readonly reply: unknown;
  /** Replicas that acknowledged the connection's writes up to the script's; 0 if WAIT failed. */
  readonly acknowledged: number;
}

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
 * to a replica can lose the last writes, as Redis replication is asynchronous, unless
 * `waitForReplicas` makes each claim and completion wait for replicas first.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly keyPrefix: string;
  private readonly timeoutMs: number;
  private readonly waitForReplicas: number;

  constructor(
    private readonly redis: RedisIdempotencyClient,
    options: RedisIdempotencyStoreOptions = {},
  ) {
    this.keyPrefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    this.waitForReplicas = options.waitForReplicas ?? 0;
    if (!Number.isInteger(this.waitForReplicas) || this.waitForReplicas < 0) {
      throw new Error(`nestjs-idempotency: waitForReplicas must be a whole number of replicas, 0 or more (got ${String(options.waitForReplicas)})`);
    }
    if (this.waitForReplicas > 0 && typeof redis.pipeline !== 'function') {
      throw new Error(
        'nestjs-idempotency: waitForReplicas needs a Redis client with pipeline() (an ioredis Redis or Cluster), ' +
          'to send WAIT on the connection that made the write',
      );
    }
  }

  async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    const ownerToken = randomUUID();
    const args = [request.fingerprint, ownerToken, request.route, wholeMs(request.leaseMs), wholeMs(request.ttlMs)];
    const recordKey = redisRecordKey(this.keyPrefix, request.account, request.key);
    const { account, key, fingerprint } = request;
    const claim: Claim = { account, key, fingerprint, ownerToken };
    const row = replyRow(
      this.waitForReplicas > 0
        ? await this.within(this.claimReplicated(claim, recordKey, args))
        : await this.within(this.evaluate(CLAIM_SCRIPT, recordKey, args)),
    );
    if (!row) throw new Error('nestjs-idempotency: the Redis claim script returned no record');
    if (row[0] === 1) return { status: 'claimed', claim };
    return foundRecordOf(row);
  }

  async inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    const row = replyRow(await this.run(INSPECT_SCRIPT, account, key, []));
    return row ? foundRecordOf(row) : undefined;
  }

  async complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const headers = JSON.stringify(response.headers);
    const args = [claim.ownerToken, response.status, headers, response.body, wholeMs(ttlMs)];
    if (this.waitForReplicas > 0) return this.within(this.completeReplicated(this.recordKeyOf(claim), args));
    // 2: this owner had stored this very response already, a completion sent twice (after a dropped connection).
    const stored = await this.run(COMPLETE_SCRIPT, claim.account, claim.key, args);
    return stored === 1 || stored === 2;
  }

  async release(claim: Claim): Promise<boolean> {
    if (this.waitForReplicas > 0) return this.within(this.releaseReplicated(this.recordKeyOf(claim), claim.ownerToken));
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

  private recordKeyOf(claim: Claim): string {
    return redisRecordKey(this.keyPrefix, claim.account, claim.key);
  }

  /**
   * A claim too few replicas hold could vanish in a failover while its handler runs, and a retry
   * would then run it a second time: it is given up (released, as far as time allows) before the
   * handler starts.
   */
  private async claimReplicated(claim: Claim, recordKey: string, args: Array<string | Buffer | number>): Promise<unknown> {
    const started = performance.now();
    const { reply, acknowledged } = await this.evaluateAndWait(CLAIM_SCRIPT, recordKey, args, started + this.waitBudgetMs());
    const row = replyRow(reply);
    if (row?.[0] !== 1 || acknowledged >= this.waitForReplicas) return reply;
    const releasing = this.evaluate(RELEASE_SCRIPT, recordKey, [claim.ownerToken]).catch(() => undefined);
    // Whatever is left of the store's timeout, less a margin for the caller to get this error rather than a timeout.
    await settledOrAfter(releasing, started + this.timeoutMs * 0.95 - performance.now());
    throw new StoreReplicationError('claim', acknowledged, this.waitForReplicas);
  }

  /**
   * Sends the completion with its WAIT until enough replicas hold it, or the wait budget is spent.
   * Sending it again is safe, and checks the record on the way: the script answers 2 for this
   * owner's record already holding this response, stores it again on this owner's claim (a
   * failover to a replica that had the claim but not the completion), and 0 when the claim is
   * gone or someone else's.
   */
  private async completeReplicated(recordKey: string, args: Array<string | Buffer | number>): Promise<boolean> {
    const deadline = performance.now() + this.waitBudgetMs();
    for (;;) {
      const { reply, acknowledged } = await this.evaluateAndWait(COMPLETE_SCRIPT, recordKey, args, deadline);
      if (reply !== 1 && reply !== 2) return false;
      if (acknowledged >= this.waitForReplicas) return true;
      if (performance.now() + RESEND_PAUSE_MS >= deadline) throw new StoreReplicationError('complete', acknowledged, this.waitForReplicas);
      await sleep(RESEND_PAUSE_MS);
    }
  }

  /** A release too few replicas hold could come back in a failover, as a claim that blocks its key until its lease ends. */
  private async releaseReplicated(recordKey: string, ownerToken: string): Promise<boolean> {
    const deadline = performance.now() + this.waitBudgetMs();
    const { reply, acknowledged } = await this.evaluateAndWait(RELEASE_SCRIPT, recordKey, [ownerToken], deadline);
    if (reply !== 1) return false;
    if (acknowledged < this.waitForReplicas) throw new StoreReplicationError('release', acknowledged, this.waitForReplicas);
    return true;
  }

  private waitBudgetMs(): number {
    return this.timeoutMs * WAIT_SHARE_OF_TIMEOUT;
  }

  /**
   * Runs a script and `WAIT waitForReplicas` in one pipeline: one write to one connection, so WAIT
   * runs right after the script on the server that ran it and counts the replicas that acknowledged
   * everything that connection wrote, the script's write included. On an ioredis Cluster a
   * pipeline goes to the master of the slot of its keyed commands, WAIT (keyless) included; sent
   * alone, WAIT would go to any node. WAIT never waits past `deadline` (and never gets 0, which
   * would wait forever).
   *
   * A script refused with a redirect (MOVED, TRYAGAIN, CLUSTERDOWN: a failover moved the slot)
   * did not run: the client is sent the record's key alone, which follows the redirect and updates
   * its slot map, and the pair is sent again until `deadline`.
   */
  private async evaluateAndWait(
    script: RedisScript,
    recordKey: string,
    args: Array<string | Buffer | number>,
    deadline: number,
  ): Promise<Replicated> {
    let sendScript = false;
    for (;;) {
      const pipeline = this.pipelineOf();
      pipeline.callBuffer(sendScript ? 'EVAL' : 'EVALSHA', sendScript ? script.lua : script.sha, 1, recordKey, ...args);
      pipeline.callBuffer('WAIT', this.waitForReplicas, Math.max(1, Math.floor(deadline - performance.now())));
      const replies = await pipeline.exec();
      if (!replies || replies.length !== 2) throw new Error('nestjs-idempotency: unexpected reply from a Redis pipeline');
      const [[scriptError, reply], [waitError, acknowledged]] = replies;
      if (!scriptError) return { reply, acknowledged: waitError ? 0 : Number(acknowledged) };
      if (!sendScript && isNoScript(scriptError)) {
        sendScript = true;
        continue;
      }
      if (!isRedirect(scriptError) || performance.now() + RESEND_PAUSE_MS >= deadline) throw scriptError;
      await this.redis.callBuffer('EXISTS', recordKey).catch(() => sleep(RESEND_PAUSE_MS));
    }
  }

  private pipelineOf(): RedisIdempotencyPipeline {
    // Checked in the constructor: waitForReplicas > 0 needs pipeline().
    return (this.redis.pipeline as () => RedisIdempotencyPipeline).call(this.redis);
  }

  private async evaluate(script: RedisScript, recordKey: string, args: Array<string | Buffer | number>): Promise<unknown> {
    try {
      return await this.redis.callBuffer('EVALSHA', script.sha, 1, recordKey, ...args);
    } catch (error) {
      // The server's script cache is empty after a restart, a failover (replicas get the scripts'
      // effects, not the scripts) or SCRIPT FLUSH: send the script itself, once.
      if (!(error instanceof Error) || !isNoScript(error)) throw error;
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

/**
 * The server has not cached the script, so it did not run. An ioredis Cluster that retried the
 * command through a failover reports it as "Too many Cluster redirections. Last error: ... NOSCRIPT".
 */
function isNoScript(error: Error): boolean {
  return /(^|: )NOSCRIPT /.test(error.message);
}

/** Replies meaning the command went to a node that does not serve its slot (now): it did not run. */
function isRedirect(error: Error): boolean {
  return /^(MOVED|TRYAGAIN|CLUSTERDOWN) /.test(error.message);
}

/** Waits for `working` to settle, or `ms`, whichever comes first. */
async function settledOrAfter(working: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms));
  });
  try {
    await Promise.race([working, elapsed]);
  } finally {
    clearTimeout(timer);
  }
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** PEXPIREAT takes whole ms; a fractional duration from a caller is rounded up rather than refused. */
function wholeMs(ms: number): number {
  return Math.ceil(ms);
}

/** Everything the example API reads from its environment, parsed once. */
export interface AppConfig {
  readonly port: number;
  /** `mysql://user:pass@host:port/db` or `postgres://user:pass@host:port/db`, or undefined for the embedded SQLite file. */
  readonly databaseUrl: string | undefined;
  readonly sqlitePath: string;
  /** API key -> account. */
  readonly apiKeys: ReadonlyMap<string, string>;
  /** HMAC-SHA256 secret of `POST /v1/webhooks/provider` signatures. */
  readonly webhookSecret: string;
  /**
   * Atomic mode (the handler's writes commit with the stored response). On by default with MySQL;
   * SQLite cannot hold a transaction per request, so there it is off, and so it is with the Redis
   * store, whose records cannot commit with the database's writes. IDEMPOTENCY_ATOMIC=on|off.
   */
  readonly atomic: boolean;
  /**
   * `IDEMPOTENCY_STORE=redis`: idempotency records in Redis, under `IDEMPOTENCY_REDIS_KEY_PREFIX`
   * (default the library's `idempotency:`), on one of: a Redis Cluster (`REDIS_CLUSTER_NODES`,
   * comma-separated `host:port` seed nodes), a primary managed by Redis Sentinel (`REDIS_SENTINELS`,
   * `host:port` list, and `REDIS_SENTINEL_NAME`, default `mymaster`), or else one Redis at
   * `REDIS_URL` (default `redis://127.0.0.1:6379`; a path `/N` selects database N).
   * `IDEMPOTENCY_REDIS_WAIT_REPLICAS=N`: each claim, completion and release waits for N replicas
   * (the store's `waitForReplicas`). Unset (or `typeorm`): the TypeORM store in the app's database.
   */
  readonly redisStore?: RedisStoreConfig;
  /** Idempotency timings, in ms; unset ones keep the library's defaults. */
  readonly idempotency: {
    /** `IDEMPOTENCY_TTL_MS`: how long a stored response lives (default 24 h). */
    readonly ttl?: number;
    readonly lockTimeoutMs?: number;
    readonly inFlightWaitMs?: number;
    readonly storeTimeoutMs?: number;
    /** `IDEMPOTENCY_REPLAY_CACHE=off` turns the in-process replay cache off. */
    readonly replayCache?: false;
    /**
     * Encryption at rest of stored responses: `IDEMPOTENCY_ENCRYPTION_KEYS`, comma-separated base64
     * 32-byte keys (the first seals, every one opens), and `IDEMPOTENCY_FINGERPRINT_KEY`, one base64
     * 32-byte secret that keys fingerprints and stays the same across rotations. Off when unset.
     */
    readonly encryption?: { readonly keys: readonly string[]; readonly fingerprintKey: string };
  };
  /**
   * Rate limit of `POST /v1/payments` per account, where replays are not charged (R24):
   * `RATE_LIMIT_PER_MINUTE` (default 600) requests per `RATE_LIMIT_WINDOW_MS` (default 60000, shorter
   * for demos and tests). Applied by the built app only (main.ts); unset, requests are not limited.
   */
  readonly rateLimit?: RateLimitConfig;
  /**
   * The RabbitMQ consumer of `payment.capture` events: `RABBITMQ_URL` (default
   * `amqp://guest:guest@127.0.0.1:5672`; `off` turns the consumer off) and `RABBITMQ_QUEUE`
   * (default `payments`). Unset here (as in the test suites that build the app in-process): no consumer.
   */
  readonly rabbitmq?: RabbitMqConfig;
}

export interface RabbitMqConfig {
  readonly url: string;
  readonly queue: string;
}

export interface RedisStoreConfig {
  readonly connection: RedisConnectionConfig;
  readonly keyPrefix?: string;
  /** The store's `waitForReplicas`; 0 or unset: none. */
  readonly waitForReplicas?: number;
  /** `IDEMPOTENCY_STORE_TIMEOUT_MS`, which the Redis store takes as its own `timeoutMs`. */
  readonly timeoutMs?: number;
}

/** Which Redis deployment holds the records. */
export type RedisConnectionConfig =
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly RedisNodeAddress[] }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly RedisNodeAddress[]; readonly name: string };

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

export interface RateLimitConfig {
  readonly limit: number;
  readonly windowMs: number;
}

const DEFAULT_API_KEYS = 'demo-key-acme:acme,demo-key-globex:globex';
/** For development only: set WEBHOOK_SECRET in any real deployment. */
export const DEVELOPMENT_WEBHOOK_SECRET = 'whsec_development_only';

export function loadAppConfig(env: NodeJS.ProcessEnv): AppConfig {
  const redisStore = parseRedisStore(env);
  return {
    port: parsePort(env.PORT),
    databaseUrl: env.DATABASE_URL?.trim() || undefined,
    sqlitePath: env.SQLITE_PATH?.trim() || 'data/payments.sqlite',
    apiKeys: parseApiKeys(env.API_KEYS ?? DEFAULT_API_KEYS),
    webhookSecret: env.WEBHOOK_SECRET?.trim() || DEVELOPMENT_WEBHOOK_SECRET,
    atomic: parseAtomic(env.IDEMPOTENCY_ATOMIC, Boolean(env.DATABASE_URL?.trim()), redisStore !== undefined),
    redisStore,
    idempotency: {
      ttl: parseMs('IDEMPOTENCY_TTL_MS', env.IDEMPOTENCY_TTL_MS),
      lockTimeoutMs: parseMs('IDEMPOTENCY_LOCK_TIMEOUT_MS', env.IDEMPOTENCY_LOCK_TIMEOUT_MS),
      inFlightWaitMs: parseMs('IDEMPOTENCY_IN_FLIGHT_WAIT_MS', env.IDEMPOTENCY_IN_FLIGHT_WAIT_MS),
      storeTimeoutMs: parseMs('IDEMPOTENCY_STORE_TIMEOUT_MS', env.IDEMPOTENCY_STORE_TIMEOUT_MS),
      replayCache: env.IDEMPOTENCY_REPLAY_CACHE === 'off' ? false : undefined,
      encryption: parseEncryption(env.IDEMPOTENCY_ENCRYPTION_KEYS, env.IDEMPOTENCY_FINGERPRINT_KEY),
    },
    rabbitmq: parseRabbitMq(env.RABBITMQ_URL, env.RABBITMQ_QUEUE),
    rateLimit: {
      limit: parseCount('RATE_LIMIT_PER_MINUTE', env.RATE_LIMIT_PER_MINUTE) ?? 600,
      windowMs: parseCount('RATE_LIMIT_WINDOW_MS', env.RATE_LIMIT_WINDOW_MS) ?? 60_000,
    },
  };
}

function parseCount(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) throw new Error(`${name}: "${value}" is not a positive whole number`);
  return count;
}

const DEFAULT_RABBITMQ_URL = 'amqp://guest:guest@127.0.0.1:5672';

function parseRabbitMq(url: string | undefined, queue: string | undefined): RabbitMqConfig | undefined {
  const chosen = url?.trim() || DEFAULT_RABBITMQ_URL;
  if (chosen === 'off') return undefined;
  if (!/^amqps?:\/\//.test(chosen)) throw new Error(`RABBITMQ_URL: "${chosen}" is neither an amqp:// URL nor off`);
  return { url: chosen, queue: queue?.trim() || 'payments' };
}

function parseAtomic(value: string | undefined, onMySql: boolean, onRedis: boolean): boolean {
  if (value === undefined || value === '') return onMySql && !onRedis;
  if (value !== 'on' && value !== 'off') throw new Error(`IDEMPOTENCY_ATOMIC: "${value}" is neither on nor off`);
  if (value === 'on' && onRedis) {
    throw new Error(
      'IDEMPOTENCY_ATOMIC=on needs the records in the database the handlers write to: unset IDEMPOTENCY_STORE ' +
        '(the TypeORM store), or set IDEMPOTENCY_ATOMIC=off to keep the Redis store',
    );
  }
  return value === 'on';
}

function parseRedisStore(env: NodeJS.ProcessEnv): RedisStoreConfig | undefined {
  const store = env.IDEMPOTENCY_STORE?.trim() ?? '';
  const waitReplicas = env.IDEMPOTENCY_REDIS_WAIT_REPLICAS?.trim() ?? '';
  if (store === '' || store === 'typeorm') {
    if (waitReplicas !== '') throw new Error('IDEMPOTENCY_REDIS_WAIT_REPLICAS is set, but the records are not in Redis: set IDEMPOTENCY_STORE=redis too');
    return undefined;
  }
  if (store !== 'redis') throw new Error(`IDEMPOTENCY_STORE: "${store}" is neither typeorm nor redis`);
  const keyPrefix = env.IDEMPOTENCY_REDIS_KEY_PREFIX?.trim();
  const waitForReplicas = parseReplicaCount(waitReplicas);
  const timeoutMs = parseMs('IDEMPOTENCY_STORE_TIMEOUT_MS', env.IDEMPOTENCY_STORE_TIMEOUT_MS);
  return {
    connection: parseRedisConnection(env),
    ...(keyPrefix ? { keyPrefix } : {}),
    ...(waitForReplicas ? { waitForReplicas } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  };
}

function parseRedisConnection(env: NodeJS.ProcessEnv): RedisConnectionConfig {
  const url = env.REDIS_URL?.trim() ?? '';
  const clusterNodes = env.REDIS_CLUSTER_NODES?.trim() ?? '';
  const sentinels = env.REDIS_SENTINELS?.trim() ?? '';
  const chosen = [url && 'REDIS_URL', clusterNodes && 'REDIS_CLUSTER_NODES', sentinels && 'REDIS_SENTINELS'].filter(Boolean);
  if (chosen.length > 1) {
    throw new Error(`${chosen.join(' and ')} are both set: set one of them (REDIS_URL: one Redis; REDIS_CLUSTER_NODES: a Redis Cluster; REDIS_SENTINELS: a Sentinel-managed primary)`);
  }
  if (clusterNodes) return { kind: 'cluster', nodes: parseNodeList('REDIS_CLUSTER_NODES', clusterNodes) };
  if (sentinels) {
    return { kind: 'sentinel', sentinels: parseNodeList('REDIS_SENTINELS', sentinels), name: env.REDIS_SENTINEL_NAME?.trim() || 'mymaster' };
  }
  if (env.REDIS_SENTINEL_NAME?.trim()) throw new Error('REDIS_SENTINEL_NAME is set, but REDIS_SENTINELS is not: list the sentinels as host:port,host:port');
  return { kind: 'url', url: url || 'redis://127.0.0.1:6379' };
}

/** `host:port,host:port`; an IPv6 host in brackets (`[::1]:7001`). */
function parseNodeList(name: string, value: string): RedisNodeAddress[] {
  return value.split(',').map((entry) => entry.trim()).filter(Boolean).map((entry) => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) throw new Error(`${name}: "${entry}" is not host:port (e.g. 127.0.0.1:7001)`);
    return { host: match[1].replace(/^\[|\]$/g, ''), port };
  });
}

function parseReplicaCount(value: string): number | undefined {
  if (value === '') return undefined;
  const count = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(count)) {
    throw new Error(`IDEMPOTENCY_REDIS_WAIT_REPLICAS: "${value}" is not a whole number of replicas (0 turns waiting off)`);
  }
  return count;
}

// Only split and checked for presence here: the library checks each key's length at start-up,
// naming the option, and never prints a key.
function parseEncryption(
  keys: string | undefined,
  fingerprintKey: string | undefined,
): AppConfig['idempotency']['encryption'] {
  const list = (keys ?? '').split(',').map((key) => key.trim()).filter(Boolean);
  if (list.length === 0) {
    if (fingerprintKey?.trim()) throw new Error('IDEMPOTENCY_FINGERPRINT_KEY is set, but IDEMPOTENCY_ENCRYPTION_KEYS is not');
    return undefined;
  }
  if (!fingerprintKey?.trim()) {
    throw new Error(
      'IDEMPOTENCY_FINGERPRINT_KEY: required with IDEMPOTENCY_ENCRYPTION_KEYS (base64 of 32 random bytes, ' +
        'kept the same when the encryption keys rotate)',
    );
  }
  return { keys: list, fingerprintKey: fingerprintKey.trim() };
}

function parseMs(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 0) throw new Error(`${name}: "${value}" is not a whole number of milliseconds`);
  return ms;
}

export function parseApiKeys(value: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const pair of value.split(',').map((entry) => entry.trim()).filter(Boolean)) {
    const separator = pair.lastIndexOf(':');
    if (separator <= 0 || separator === pair.length - 1) {
      throw new Error(`API_KEYS: "${pair}" is not a key:account pair`);
    }
    keys.set(pair.slice(0, separator), pair.slice(separator + 1));
  }
  return keys;
}

function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return 3000;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT: "${value}" is not a port number`);
  return port;
}

import {
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateBy,
  validateSync,
  type ValidationError,
} from 'class-validator';
import type { DataSource } from 'typeorm';
import { defaultAccountResolver, type AccountId, type AccountResolver } from './account/account-resolver.js';
import { keyedFingerprint } from './encryption/keyed-fingerprint.js';
import { encryptionOptionProblems, Keyring, type IdempotencyEncryptionOptions } from './encryption/keyring.js';
import { defaultErrorFormatter, type IdempotencyErrorFormatter } from './errors/error-formatter.js';
import { fingerprintRequest, type FingerprintFunction } from './fingerprint/request-fingerprint.js';
import type { IdempotencyKeyFormat } from './key/idempotency-key.parser.js';
import { keySourceProblem, type IdempotencyKeySource } from './key/key-source.js';
import { assertStorableHeaders, DEFAULT_STORED_HEADERS } from './response/stored-headers.js';
import { defaultStoreResponse, type StoreResponsePredicate } from './response/stored-status-policy.js';
import type { IdempotencyStore } from './store/idempotency-store.js';
import { DEFAULT_STORE_TIMEOUT_MS } from './store/store-timeout.js';
import type { ReplayCacheOptions } from './store/replay-cache.store.js';

/** Options that a route can set in `@Idempotent({...})`, overriding the module's. */
export interface IdempotencyRouteOptions {
  /** Answer a request without a key with 400 `idempotency_key_missing` (R2). Default false. */
  required?: boolean;
  /** How long a stored response lives after it was stored, in ms (R12). Default 24 h. */
  ttl?: number;
  /** `'uuid'` (default), `'token'` (1-255 printable ASCII) or your own check (R3). */
  keyFormat?: IdempotencyKeyFormat;
  /** Status for a key reused with another request (R10): 422 (default) or 409. */
  mismatchStatus?: 409 | 422;
  /** Request headers that count in the fingerprint, besides method, path, query and body (R7). */
  fingerprintHeaders?: string[];
  /** Response headers stored and replayed besides content-type, location, content-language (R15). */
  storedHeaders?: string[];
  /** How long a retry waits for the first request to finish before 409, in ms (R11). Default 3000. */
  inFlightWaitMs?: number;
  /** The lease of an in-flight claim, renewed while the handler runs, in ms (R20). Default 60 s. */
  lockTimeoutMs?: number;
  /** Lease renewal stops this long after the claim, so a hung handler frees its key (R20). Default 1 h. */
  maxLockHoldMs?: number;
  /** Which statuses are stored for replay (R14). Default: below 500, except 400/401/403/408/409/423/425/429. */
  storeResponse?: StoreResponsePredicate;
  /**
   * Run the handler in a transaction that commits with its stored response (R22); the handler
   * writes through `IdempotencyTransaction.manager`. MySQL/MariaDB only. Default false.
   */
  atomic?: boolean;
}

/** Options of `@Idempotent({...})`: a route's, and where a GraphQL mutation or message handler finds its key. */
export interface IdempotentHandlerOptions extends IdempotencyRouteOptions {
  /**
   * GraphQL mutations and message handlers only (R23): where the key is. Default: the `headerName`
   * header for a mutation; a message handler must say.
   */
  key?: IdempotencyKeySource;
  /**
   * Message handlers only: the account in the payload that scopes keys besides the pattern (R5),
   * so that two tenants' events with the same id are two events.
   */
  accountFromPayload?: (payload: unknown) => AccountId | null | undefined;
  /**
   * Message handlers only: the transport acknowledges by hand (RabbitMQ with `noAck: false`) and
   * the library does it, so the handler must not: a delivery is acknowledged once its outcome is
   * stored (a crash before then redelivers it) or replayed; it is requeued when the handler threw
   * (its key released) or when a later delivery may pass (the first still in flight past the wait,
   * the store down); it is rejected, to a dead-letter exchange if the queue has one, when no
   * delivery can pass (another payload with its key, a malformed key). Default false.
   */
  manualAck?: boolean;
}

/** Options of `IdempotencyModule.forRoot()` / `forRootAsync()`. */
export interface IdempotencyModuleOptions extends IdempotencyRouteOptions {
  /** The request header that carries the key. Default `Idempotency-Key`. */
  headerName?: string;
  /**
   * Resolves the account that scopes keys (R5). Default: `request.user.accountId` (else `sub`, `userId`,
   * `id`). A request with `request.user` set whose account resolves to nothing is refused (R5a).
   */
  account?: AccountResolver;
  /** Replaces the built-in fingerprint (R7). */
  fingerprint?: FingerprintFunction;
  /** Formats refusals (R17). Default `{"error":{"code","message"}}`; see `problemJsonErrorFormatter`. */
  errorFormatter?: IdempotencyErrorFormatter;
  /** Treat every POST, PATCH and DELETE as `@Idempotent()` (R1). Default false. */
  applyToAllWrites?: boolean;
  /** The DataSource holding `idempotency_records`. Default: the one `TypeOrmModule.forRoot()` provides. */
  dataSource?: DataSource;
  /** Use another store instead of the TypeORM one. */
  store?: IdempotencyStore;
  /** Purge expired records every this many ms (R21). Default: never (call `IdempotencyService.purgeExpired()`). */
  purgeIntervalMs?: number;
  /** Rows deleted per purge statement (R21). Default 500. */
  purgeBatchSize?: number;
  /**
   * A store call that takes longer fails the request with 503 instead of hanging it (R18). Default
   * 5000. For the built-in TypeORM store; a store passed in `store` takes its own (`timeoutMs`).
   */
  storeTimeoutMs?: number;
  /**
   * Keep completed responses in process memory so repeated retries skip the database; `false`
   * turns it off. Default `{ maxEntries: 1000, maxBytes: 8 MiB, maxAgeMs: 60 s }`.
   */
  replayCache?: false | ReplayCacheOptions;
  /**
   * Encrypt stored responses at rest (R26): AES-256-GCM with `keys` (the first seals, every one
   * opens), and fingerprints keyed with `fingerprintKey` (HMAC-SHA256). Default: off.
   */
  encryption?: IdempotencyEncryptionOptions;
}

/** Everything a route needs, with defaults filled in: resolved once per handler. */
export interface ResolvedRouteOptions {
  readonly required: boolean;
  readonly ttlMs: number;
  readonly keyFormat: IdempotencyKeyFormat;
  readonly mismatchStatus: 409 | 422;
  readonly storedHeaders: ReadonlySet<string>;
  readonly inFlightWaitMs: number;
  readonly leaseMs: number;
  readonly maxLockHoldMs: number;
  readonly atomic: boolean;
  readonly storeResponse: StoreResponsePredicate;
  readonly fingerprint: FingerprintFunction;
}

/** The module's options with defaults filled in. */
export interface ResolvedModuleOptions {
  readonly headerName: string;
  readonly account: AccountResolver;
  readonly errorFormatter: IdempotencyErrorFormatter;
  readonly applyToAllWrites: boolean;
  readonly purgeIntervalMs: number | undefined;
  readonly purgeBatchSize: number;
  readonly storeTimeoutMs: number;
  readonly replayCache: false | ReplayCacheOptions;
  readonly dataSource: DataSource | undefined;
  readonly store: IdempotencyStore | undefined;
  /** The decoded `encryption` keys, or undefined when stored responses are kept in the clear. */
  readonly encryption: Keyring | undefined;
  /** Module-level route defaults; `@Idempotent({...})` overrides them per route. */
  readonly routeDefaults: IdempotencyRouteOptions;
  resolveRoute(overrides: IdempotencyRouteOptions): ResolvedRouteOptions;
}

export const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_IN_FLIGHT_WAIT_MS = 3000;
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_LOCK_HOLD_MS = 60 * 60 * 1000;

const DEFAULT_PURGE_BATCH_SIZE = 500;
const MAX_DURATION_MS = 366 * 24 * 60 * 60 * 1000;

const IsFunctionOption = (message: string) =>
  ValidateBy({ name: 'isFunctionOption', validator: { validate: (v) => typeof v === 'function', defaultMessage: () => message } });

const IsReplayCacheOption = () =>
  ValidateBy({
    name: 'isReplayCacheOption',
    validator: {
      validate: (value) =>
        value === false ||
        (value !== null &&
          typeof value === 'object' &&
          Object.entries(value as object).every(
            ([name, limit]) => ['maxEntries', 'maxBytes', 'maxAgeMs'].includes(name) && Number.isInteger(limit) && (limit as number) > 0,
          )),
      defaultMessage: () => 'replayCache must be false or { maxEntries?, maxBytes?, maxAgeMs? } with positive whole numbers',
    },
  });

const IsEncryptionOption = () =>
  ValidateBy({
    name: 'isEncryptionOption',
    validator: {
      validate: (value) => encryptionOptionProblems(value).length === 0,
      defaultMessage: (args) => encryptionOptionProblems(args?.value).join('; '),
    },
  });

const IsKeyFormat = () =>
  ValidateBy({
    name: 'isKeyFormat',
    validator: {
      validate: (v) => v === 'uuid' || v === 'token' || typeof v === 'function',
      defaultMessage: () => `keyFormat must be 'uuid', 'token' or a function (key: string) => boolean`,
    },
  });

// RFC 9110 token characters: what a header name may contain.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

class RouteOptionsSchema {
  @IsOptional() @IsBoolean() required?: boolean;
  @IsOptional() @IsInt() @Min(1) @Max(MAX_DURATION_MS) ttl?: number;
  @IsOptional() @IsKeyFormat() keyFormat?: unknown;
  @IsOptional() @IsIn([409, 422]) mismatchStatus?: number;
  @IsOptional() @IsArray() @Matches(HEADER_NAME, { each: true }) fingerprintHeaders?: string[];
  @IsOptional() @IsArray() @Matches(HEADER_NAME, { each: true }) storedHeaders?: string[];
  @IsOptional() @IsInt() @Min(0) @Max(MAX_DURATION_MS) inFlightWaitMs?: number;
  @IsOptional() @IsInt() @Min(100) @Max(MAX_DURATION_MS) lockTimeoutMs?: number;
  @IsOptional() @IsInt() @Min(100) @Max(MAX_DURATION_MS) maxLockHoldMs?: number;
  @IsOptional() @IsFunctionOption('storeResponse must be a function (status: number) => boolean') storeResponse?: unknown;
  @IsOptional() @IsBoolean() atomic?: boolean;
}

const IsKeySource = () =>
  ValidateBy({
    name: 'isKeySource',
    validator: { validate: (value) => keySourceProblem(value) === undefined, defaultMessage: (args) => keySourceProblem(args?.value) ?? '' },
  });

class HandlerOptionsSchema extends RouteOptionsSchema {
  @IsOptional() @IsKeySource() key?: unknown;
  @IsOptional() @IsFunctionOption('accountFromPayload must be a function (payload) => string | undefined') accountFromPayload?: unknown;
  @IsOptional() @IsBoolean() manualAck?: boolean;
}

class ModuleOptionsSchema extends RouteOptionsSchema {
  @IsOptional() @IsString() @Matches(HEADER_NAME) headerName?: string;
  @IsOptional() @IsFunctionOption('account must be a function (request) => string | undefined') account?: unknown;
  @IsOptional() @IsFunctionOption('fingerprint must be a function (request) => string') fingerprint?: unknown;
  @IsOptional() @IsFunctionOption('errorFormatter must be a function') errorFormatter?: unknown;
  @IsOptional() @IsBoolean() applyToAllWrites?: boolean;
  @IsOptional() @IsObject() dataSource?: unknown;
  @IsOptional() @IsObject() store?: unknown;
  @IsOptional() @IsInt() @Min(1000) purgeIntervalMs?: number;
  @IsOptional() @IsInt() @Min(1) @Max(10_000) purgeBatchSize?: number;
  @IsOptional() @IsInt() @Min(10) @Max(MAX_DURATION_MS) storeTimeoutMs?: number;
  @IsOptional() @IsReplayCacheOption() replayCache?: unknown;
  @IsOptional() @IsEncryptionOption() encryption?: unknown;
}

const ROUTE_OPTION_NAMES = Object.freeze([
  'required', 'ttl', 'keyFormat', 'mismatchStatus', 'fingerprintHeaders', 'storedHeaders', 'inFlightWaitMs',
  'lockTimeoutMs', 'maxLockHoldMs', 'storeResponse', 'atomic',
]);
const HANDLER_OPTION_NAMES = Object.freeze([...ROUTE_OPTION_NAMES, 'key', 'accountFromPayload', 'manualAck']);
const MODULE_OPTION_NAMES = Object.freeze([
  ...ROUTE_OPTION_NAMES, 'headerName', 'account', 'fingerprint', 'errorFormatter', 'applyToAllWrites',
  'dataSource', 'store', 'purgeIntervalMs', 'purgeBatchSize', 'storeTimeoutMs', 'replayCache', 'encryption', 'isGlobal',
]);

/** Checks `@Idempotent()` options when the decorator is applied, so a mistake stops the app at start-up. */
export function validateHandlerOptions(options: IdempotentHandlerOptions, where: string): void {
  validateAgainst(new HandlerOptionsSchema(), HANDLER_OPTION_NAMES, options, where);
}

/** Checks the module's options and fills in every default. */
export function resolveModuleOptions(options: IdempotencyModuleOptions): ResolvedModuleOptions {
  validateAgainst(new ModuleOptionsSchema(), MODULE_OPTION_NAMES, options, 'IdempotencyModule options');
  const routeDefaults: IdempotencyRouteOptions = pickRouteOptions(options);
  const customFingerprint = options.fingerprint;
  const encryption = options.encryption ? Keyring.from(options.encryption) : undefined;
  return {
    headerName: options.headerName ?? 'Idempotency-Key',
    account: options.account ?? defaultAccountResolver,
    errorFormatter: options.errorFormatter ?? defaultErrorFormatter,
    applyToAllWrites: options.applyToAllWrites ?? false,
    purgeIntervalMs: options.purgeIntervalMs,
    purgeBatchSize: options.purgeBatchSize ?? DEFAULT_PURGE_BATCH_SIZE,
    storeTimeoutMs: options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
    replayCache: options.replayCache ?? {},
    dataSource: options.dataSource,
    store: options.store,
    encryption,
    routeDefaults,
    resolveRoute(overrides) {
      const merged = { ...routeDefaults, ...definedOnly(overrides) };
      const fingerprintHeaders = merged.fingerprintHeaders ?? [];
      return {
        required: merged.required ?? false,
        ttlMs: merged.ttl ?? DEFAULT_TTL_MS,
        keyFormat: merged.keyFormat ?? 'uuid',
        mismatchStatus: merged.mismatchStatus ?? 422,
        storedHeaders: new Set(
          [...DEFAULT_STORED_HEADERS, ...(routeDefaults.storedHeaders ?? []), ...(overrides.storedHeaders ?? [])].map(
            (name) => name.toLowerCase(),
          ),
        ),
        inFlightWaitMs: merged.inFlightWaitMs ?? DEFAULT_IN_FLIGHT_WAIT_MS,
        leaseMs: merged.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
        maxLockHoldMs: merged.maxLockHoldMs ?? DEFAULT_MAX_LOCK_HOLD_MS,
        atomic: merged.atomic ?? false,
        storeResponse: merged.storeResponse ?? defaultStoreResponse,
        fingerprint:
          customFingerprint ??
          (encryption
            ? keyedFingerprint(encryption.fingerprintMacKey, fingerprintHeaders)
            : (request) => fingerprintRequest(request, fingerprintHeaders)),
      };
    },
  };
}

function pickRouteOptions(options: IdempotencyModuleOptions): IdempotencyRouteOptions {
  const picked: Record<string, unknown> = {};
  for (const name of ROUTE_OPTION_NAMES) {
    const value = (options as Record<string, unknown>)[name];
    if (value !== undefined) picked[name] = value;
  }
  return picked as IdempotencyRouteOptions;
}

function definedOnly(options: IdempotencyRouteOptions): IdempotencyRouteOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

function validateAgainst(schema: object, known: readonly string[], options: object, where: string): void {
  if (options === null || typeof options !== 'object') {
    throw new Error(`nestjs-idempotency: ${where} must be an object.`);
  }
  const unknown = Object.keys(options).filter((name) => !known.includes(name));
  const problems = unknown.map((name) => `unknown option "${name}" (known: ${known.join(', ')})`);
  Object.assign(schema, options);
  problems.push(...validateSync(schema).flatMap(describe));
  const stored = (options as IdempotencyRouteOptions).storedHeaders;
  if (problems.length > 0) {
    throw new Error(`nestjs-idempotency: invalid ${where}:\n  - ${problems.join('\n  - ')}`);
  }
  if (Array.isArray(stored)) assertStorableHeaders(stored, where);
}

function describe(error: ValidationError): string[] {
  return Object.values(error.constraints ?? {}).map((message) => `"${error.property}": ${message}`);
}

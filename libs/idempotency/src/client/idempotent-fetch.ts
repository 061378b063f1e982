import { AttemptSignal } from './attempt-signal.js';
import { fullJitterDelayMs } from './backoff.js';
import { IdempotentRequestError, type GiveUpReason } from './idempotent-request.error.js';
import { freezeBody, type ReplayableBody } from './replayable-body.js';
import { parseRetryAfterMs } from './retry-after.js';
import { isRetryableResponse } from './retryable-response.js';
import { wait } from './wait.js';

/** The fetch function the client calls; `globalThis.fetch` unless one is given (a proxy agent, instrumentation). */
export type FetchFunction = (input: string | URL, init: RequestInit) => Promise<Response>;

/** What `onRetry` is told before each wait: which attempt failed, how, and how long the client waits now. */
export interface RetryEvent {
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  /** How long the client waits before the next attempt, in ms (at least the server's `Retry-After`). */
  readonly delayMs: number;
  readonly idempotencyKey: string;
  /** The retryable status the attempt got (409, 429, 502, 503, 504), if it got an answer. */
  readonly status?: number;
  /** The network error or per-attempt timeout (a `TimeoutError`), if it got no answer. */
  readonly error?: unknown;
}

/** `fetch` options plus the idempotency and retry ones; the body must be one that can be sent again byte for byte. */
export interface IdempotentFetchInit extends Omit<RequestInit, 'body' | 'method' | 'signal'> {
  /** Default `POST`: the methods an idempotency key is for are the ones that change something. */
  readonly method?: string;
  readonly body?: ReplayableBody | null;
  /** A value sent as JSON (serialised once), with `content-type: application/json` unless the headers set one. */
  readonly json?: unknown;
  /** The key of this logical operation; default a new `crypto.randomUUID()` per call (or the key already in `headers`). */
  readonly idempotencyKey?: string;
  /** Default `Idempotency-Key`. */
  readonly idempotencyHeader?: string;
  /** At most this many attempts, the first included; default 5. `Infinity` leaves only `timeoutMs`. */
  readonly maxAttempts?: number;
  /** The whole call's time budget in ms, waits and attempts included; default 30 000. `Infinity` leaves only `maxAttempts`. */
  readonly timeoutMs?: number;
  /** One attempt's limit in ms, until the response headers arrive; default 10 000. */
  readonly attemptTimeoutMs?: number;
  /** The first backoff's ceiling in ms (full jitter, doubling per retry); default 200. */
  readonly baseDelayMs?: number;
  /** The largest backoff ceiling in ms; default 5 000. A longer `Retry-After` is still honoured. */
  readonly maxDelayMs?: number;
  /** Cancels the call at once, attempt or wait; the call rejects with the signal's reason, like fetch. */
  readonly signal?: AbortSignal;
  readonly fetch?: FetchFunction;
  /** Called before each wait, e.g. to log or count retries. */
  readonly onRetry?: (event: RetryEvent) => void;
}

/** The final answer and how it was reached. */
export interface IdempotentResponse {
  /** The last response, its body unread: the success, the first non-retryable answer, or the last retryable one when the client gave up. */
  readonly response: Response;
  /** Whether the server answered from its store (`Idempotency-Replayed: true`, R9, R13). */
  readonly replayed: boolean;
  /** How many attempts were sent, the first included. */
  readonly attempts: number;
  /** The key every attempt carried. */
  readonly idempotencyKey: string;
}

const REPLAYED_HEADER = 'Idempotency-Replayed';

interface RetryPolicy {
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly attemptTimeoutMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

type AttemptOutcome =
  | { readonly response: Response; readonly retryable: boolean; readonly discard: () => void }
  | { readonly error: unknown; readonly abortedBy: 'attempt-timeout' | 'budget' | undefined };

// Resolves with the final response, a retryable one included when the budget or the attempts run
// out (as fetch resolves with any status); rejects with IdempotentRequestError only when no attempt
// got an answer at all, since then the caller cannot know whether the operation happened.
/** Sends one operation under one idempotency key, retrying with the same key and body bytes until an answer that is final (R28). */
export async function idempotentFetch(input: string | URL, init: IdempotentFetchInit = {}): Promise<IdempotentResponse> {
  const {
    method = 'POST',
    body,
    json,
    idempotencyKey,
    idempotencyHeader = 'Idempotency-Key',
    maxAttempts,
    timeoutMs,
    attemptTimeoutMs,
    baseDelayMs,
    maxDelayMs,
    signal,
    fetch: fetchFunction = globalThis.fetch,
    onRetry,
    headers: headersInit,
    ...fetchOptions
  } = init;
  const policy = retryPolicy({ maxAttempts, timeoutMs, attemptTimeoutMs, baseDelayMs, maxDelayMs });
  signal?.throwIfAborted();
  const deadline = Date.now() + policy.timeoutMs;

  const headers = new Headers(headersInit);
  const key = chooseKey(idempotencyKey, headers.get(idempotencyHeader), idempotencyHeader);
  headers.set(idempotencyHeader, key);
  const frozen = await freezeBody(body, json);
  if (frozen?.contentType && !headers.has('content-type')) headers.set('content-type', frozen.contentType);
  // Fails now, once, on what no retry could fix: a malformed URL, method or header, a GET with a body.
  new Request(input, { method, headers, body: frozen?.bytes });

  const send = (attemptSignal: AbortSignal): Promise<Response> =>
    fetchFunction(input, { ...fetchOptions, method, headers, body: frozen?.bytes, signal: attemptSignal });

  for (let attempt = 1; ; attempt++) {
    const outcome = await sendOnce(send, signal, policy.attemptTimeoutMs, deadline - Date.now());
    const backoff = fullJitterDelayMs(attempt, policy.baseDelayMs, policy.maxDelayMs);

    if ('response' in outcome) {
      const { response } = outcome;
      if (!outcome.retryable) return final(response, attempt, key);
      const retryAfterMs = parseRetryAfterMs(response.headers.get('retry-after'), Date.now());
      const delayMs = Math.max(retryAfterMs ?? 0, backoff);
      // Waiting past the deadline would be pointless, and retrying before Retry-After would ignore
      // the server, so a wait that does not fit the budget ends the call with this answer.
      if (attempt >= policy.maxAttempts || Date.now() + delayMs >= deadline) return final(response, attempt, key);
      outcome.discard();
      onRetry?.({ attempt, delayMs, idempotencyKey: key, status: response.status });
      await wait(delayMs, signal);
      continue;
    }

    if (outcome.abortedBy === 'budget') throw new IdempotentRequestError(key, attempt, 'time', outcome.error);
    const reason: GiveUpReason | undefined =
      attempt >= policy.maxAttempts ? 'attempts' : Date.now() + backoff >= deadline ? 'time' : undefined;
    if (reason) throw new IdempotentRequestError(key, attempt, reason, outcome.error);
    onRetry?.({ attempt, delayMs: backoff, idempotencyKey: key, error: outcome.error });
    await wait(backoff, signal);
  }
}

/**
 * One attempt, until the response headers and the retry decision (which may read a 409's body) are
 * in, under the attempt's timeouts. A caller's cancel is rethrown as is: it ends the whole call.
 */
async function sendOnce(
  send: (signal: AbortSignal) => Promise<Response>,
  caller: AbortSignal | undefined,
  attemptTimeoutMs: number,
  budgetLeftMs: number,
): Promise<AttemptOutcome> {
  const attempt = new AttemptSignal(caller, attemptTimeoutMs, budgetLeftMs);
  try {
    const response = await send(attempt.signal);
    const retryable = await isRetryableResponse(response);
    if (attempt.cause === 'caller') throw caller?.reason;
    attempt.stopTimers();
    const discard = (): void => {
      attempt.dispose();
      // Frees the connection for the next attempt instead of leaving an unread body holding it. Not
      // awaited: cancelling one branch of a teed (cloned) body settles only once the other one ends.
      response.body?.cancel().catch(() => undefined);
    };
    return { response, retryable, discard };
  } catch (error) {
    attempt.dispose();
    if (attempt.cause === 'caller') throw caller?.reason;
    const abortedBy = attempt.cause;
    return { error: abortedBy ? (attempt.signal.reason as unknown) : error, abortedBy };
  }
}

function final(response: Response, attempts: number, idempotencyKey: string): IdempotentResponse {
  const replayed = response.headers.get(REPLAYED_HEADER)?.trim().toLowerCase() === 'true';
  return { response, replayed, attempts, idempotencyKey };
}

function chooseKey(option: string | undefined, header: string | null, headerName: string): string {
  if (option !== undefined && header !== null && option !== header) {
    throw new TypeError(`idempotentFetch: idempotencyKey and the ${headerName} header disagree; give the key once`);
  }
  const key = option ?? header ?? globalThis.crypto.randomUUID();
  if (key.trim() === '') throw new TypeError('idempotentFetch: the idempotency key is empty');
  return key;
}

function retryPolicy(options: { [K in keyof RetryPolicy]: number | undefined }): RetryPolicy {
  const policy: RetryPolicy = {
    maxAttempts: options.maxAttempts ?? 5,
    timeoutMs: options.timeoutMs ?? 30_000,
    attemptTimeoutMs: options.attemptTimeoutMs ?? 10_000,
    baseDelayMs: options.baseDelayMs ?? 200,
    maxDelayMs: options.maxDelayMs ?? 5_000,
  };
  if (!(Number.isInteger(policy.maxAttempts) && policy.maxAttempts >= 1) && policy.maxAttempts !== Infinity) {
    throw new RangeError(`idempotentFetch: maxAttempts must be a whole number from 1, or Infinity; got ${policy.maxAttempts}`);
  }
  if (policy.maxAttempts === Infinity && policy.timeoutMs === Infinity) {
    throw new RangeError('idempotentFetch: maxAttempts and timeoutMs cannot both be Infinity; retries must end');
  }
  for (const name of ['timeoutMs', 'attemptTimeoutMs'] as const) {
    if (!(policy[name] > 0)) throw new RangeError(`idempotentFetch: ${name} must be more than 0 ms; got ${policy[name]}`);
  }
  if (!Number.isFinite(policy.attemptTimeoutMs)) throw new RangeError('idempotentFetch: attemptTimeoutMs must be finite');
  for (const name of ['baseDelayMs', 'maxDelayMs'] as const) {
    if (!(policy[name] >= 0 && Number.isFinite(policy[name]))) {
      throw new RangeError(`idempotentFetch: ${name} must be a finite number of ms from 0; got ${policy[name]}`);
    }
  }
  return policy;
}

// 409: the first request with this key is still in flight (R11). 429: rate limited. 502, 503, 504: the
// request most likely never reached the handler, or the idempotency store was down (R18). Every other
// 4xx is the client's mistake and fails the same way again. 500 and 501 are not retried: the server
// released the key (R14), but a handler that crashed once usually crashes again, so the caller decides.
/** The statuses the client sends again with the same key (R28): 409, 429, 502, 503, 504. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([409, 429, 502, 503, 504]);

const KEY_REUSE_CODE = 'idempotency_key_reuse';

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/**
 * Whether to send the request again after this response. A server configured with
 * `mismatchStatus: 409` answers a reused key (R10) with 409 too: that one never succeeds on retry,
 * so its body's contract code (default or problem+json format, R17) is read to tell the two apart.
 */
export async function isRetryableResponse(response: Response): Promise<boolean> {
  if (!isRetryableStatus(response.status)) return false;
  if (response.status !== 409) return true;
  return !(await isKeyReuse(response));
}

async function isKeyReuse(response: Response): Promise<boolean> {
  if (!/json/i.test(response.headers.get('content-type') ?? '')) return false;
  try {
    return errorCode(JSON.parse(await response.clone().text())) === KEY_REUSE_CODE;
  } catch {
    return false;
  }
}

function errorCode(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) return undefined;
  const { error, code } = body as { error?: unknown; code?: unknown };
  if (typeof error === 'object' && error !== null) return (error as { code?: unknown }).code;
  return code;
}

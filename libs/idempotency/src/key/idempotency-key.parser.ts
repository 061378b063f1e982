/** How an `Idempotency-Key` value is checked: a UUID, an opaque token, or the application's own rule. */
export type IdempotencyKeyFormat = 'uuid' | 'token' | ((key: string) => boolean);

/** Why a header value was refused; the guard turns each into a contract error. */
export type KeyParseFailure = 'missing' | 'invalid';

export type KeyParseResult = { ok: true; key: string } | { ok: false; failure: KeyParseFailure };

/** What a valid key is, in words: the 400 `invalid_idempotency_key` message and the OpenAPI description. */
export function describeKeyFormat(format: IdempotencyKeyFormat): string {
  if (format === 'uuid') return 'UUID (hyphenated, 32 hex digits, {braced} or urn:uuid:)';
  if (format === 'token') return 'token of 1 to 255 printable ASCII characters';
  return 'key in the format this endpoint accepts';
}

const MAX_UUID_INPUT_LENGTH = 128;
const MAX_TOKEN_LENGTH = 255;
const HEX32 = /^[0-9a-f]{32}$/;
const HYPHENATED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Visible ASCII and the space (0x20-0x7E): what RFC 9110 allows in a field value without obs-text.
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;
// Any C0 control, DEL or C1 control. Node rejects most of them on the wire already; the check stays
// so that a value arriving through a proxy that decodes them is refused the same way (R4).
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Reads every `Idempotency-Key` occurrence of a request and returns the normalised key.
 * `values` are the raw header values in arrival order (from `rawHeaders`), so that two
 * headers are seen as two, rather than as one value that Node joined with a comma.
 */
export function parseIdempotencyKey(values: readonly string[], format: IdempotencyKeyFormat): KeyParseResult {
  if (values.length === 0) return { ok: false, failure: 'missing' };
  if (values.length > 1) return { ok: false, failure: 'invalid' };
  const raw = values[0];
  if (CONTROL_CHARACTER.test(raw)) return { ok: false, failure: 'invalid' };
  const value = unquoteStructuredString(raw.trim());
  if (value === undefined || value.length === 0) return { ok: false, failure: 'invalid' };
  const key = normaliseForFormat(value, format);
  return key === undefined ? { ok: false, failure: 'invalid' } : { ok: true, key };
}

/**
 * The IETF draft sends the key as an RFC 8941 sf-string: `"..."` with `\"` and `\\` escapes.
 * A bare value is returned as it is; a malformed quoted one is refused (undefined).
 */
export function unquoteStructuredString(value: string): string | undefined {
  if (!value.startsWith('"')) return value;
  if (value.length < 2 || !value.endsWith('"')) return undefined;
  let result = '';
  const inner = value.slice(1, -1);
  for (let i = 0; i < inner.length; i++) {
    const char = inner[i];
    if (char === '\\') {
      const next = inner[i + 1];
      if (next !== '"' && next !== '\\') return undefined;
      result += next;
      i++;
    } else if (char === '"') {
      return undefined;
    } else {
      result += char;
    }
  }
  return result;
}

function normaliseForFormat(value: string, format: IdempotencyKeyFormat): string | undefined {
  if (format === 'uuid') return normaliseUuid(value);
  if (format === 'token') return value.length <= MAX_TOKEN_LENGTH && PRINTABLE_ASCII.test(value) ? value : undefined;
  if (value.length > MAX_TOKEN_LENGTH || !PRINTABLE_ASCII.test(value)) return undefined;
  return format(value) ? value : undefined;
}

/**
 * Accepts the four spellings of a UUID (hyphenated, 32 hex digits, `{braced}`, `urn:uuid:`) in any
 * case and returns the lower-case hyphenated form, so that every spelling is the same stored key (R3).
 */
export function normaliseUuid(value: string): string | undefined {
  if (value.length > MAX_UUID_INPUT_LENGTH) return undefined;
  let candidate = value.toLowerCase();
  if (candidate.startsWith('urn:uuid:')) candidate = candidate.slice('urn:uuid:'.length);
  else if (candidate.startsWith('{') && candidate.endsWith('}')) candidate = candidate.slice(1, -1);
  if (HYPHENATED.test(candidate)) return candidate;
  if (HEX32.test(candidate)) {
    return [
      candidate.slice(0, 8),
      candidate.slice(8, 12),
      candidate.slice(12, 16),
      candidate.slice(16, 20),
      candidate.slice(20),
    ].join('-');
  }
  return undefined;
}

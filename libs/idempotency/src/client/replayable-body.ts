// Streams are missing because a retry cannot read them again, and FormData because fetch draws a new
// random multipart boundary for every request, which changes the bytes and so the server's fingerprint.
/** A request body that is sent as the same bytes on every attempt (R7, R28): no stream, no FormData. */
export type ReplayableBody = string | URLSearchParams | ArrayBuffer | ArrayBufferView | Blob;

/** The body of every attempt, fixed once before the first one. */
export interface FrozenBody {
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** What fetch would have sent as `content-type` for the original value, if anything. */
  readonly contentType?: string;
}

/**
 * Copies the body into bytes once, so a retry sends exactly what the first attempt sent even if
 * the caller mutates the buffer or the URLSearchParams afterwards. `json` is serialised once here
 * too: serialising again on each attempt would be the same bytes only for a value nobody touches.
 */
export async function freezeBody(body: ReplayableBody | null | undefined, json: unknown): Promise<FrozenBody | undefined> {
  if (json !== undefined) {
    if (body !== undefined && body !== null) throw new TypeError('idempotentFetch: give either body or json, not both');
    const text = JSON.stringify(json);
    if (text === undefined) throw new TypeError('idempotentFetch: json is not serialisable to JSON');
    return { bytes: utf8(text), contentType: 'application/json' };
  }
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return { bytes: utf8(body), contentType: 'text/plain;charset=UTF-8' };
  if (body instanceof URLSearchParams) {
    return { bytes: utf8(body.toString()), contentType: 'application/x-www-form-urlencoded;charset=UTF-8' };
  }
  if (isArrayBuffer(body)) return { bytes: copy(new Uint8Array(body)) };
  if (ArrayBuffer.isView(body)) return { bytes: copy(new Uint8Array(body.buffer, body.byteOffset, body.byteLength)) };
  if (body instanceof Blob) return { bytes: new Uint8Array(await body.arrayBuffer()), contentType: body.type || undefined };
  throw new TypeError(
    'idempotentFetch: the body must be a string, URLSearchParams, ArrayBuffer, typed array, Blob or a json value; ' +
      'a stream cannot be sent again and FormData gets a new multipart boundary on every attempt',
  );
}

// By tag, not instanceof: a buffer made in another realm (a worker, a vm context) is still one.
function isArrayBuffer(value: unknown): value is ArrayBuffer {
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]';
}

function utf8(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text);
}

function copy(view: Uint8Array): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(view.byteLength);
  bytes.set(view);
  return bytes;
}

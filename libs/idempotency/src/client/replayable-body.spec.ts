import { describe, expect, it } from '@jest/globals';
import { freezeBody, type ReplayableBody } from './replayable-body.js';

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

describe('freezeBody', () => {
  it('serialises json once, as application/json', async () => {
    const frozen = await freezeBody(undefined, { amount: 4200, currency: 'EUR' });
    expect(text(frozen?.bytes)).toBe('{"amount":4200,"currency":"EUR"}');
    expect(frozen?.contentType).toBe('application/json');
  });

  it('keeps the content type fetch would have sent for a string or URLSearchParams', async () => {
    expect(await freezeBody('hello', undefined)).toEqual({ bytes: new TextEncoder().encode('hello'), contentType: 'text/plain;charset=UTF-8' });
    const form = await freezeBody(new URLSearchParams({ a: '1', b: 'x y' }), undefined);
    expect(text(form?.bytes)).toBe('a=1&b=x+y');
    expect(form?.contentType).toBe('application/x-www-form-urlencoded;charset=UTF-8');
  });

  it('copies buffers, so a caller mutating them later changes no retry (R28)', async () => {
    const source = new TextEncoder().encode('{"amount":1}');
    const frozen = await freezeBody(source, undefined);
    source[10] = '9'.charCodeAt(0);
    expect(text(frozen?.bytes)).toBe('{"amount":1}');

    const params = new URLSearchParams({ a: '1' });
    const frozenParams = await freezeBody(params, undefined);
    params.set('a', '2');
    expect(text(frozenParams?.bytes)).toBe('a=1');
  });

  it('reads only the viewed part of a typed array', async () => {
    const buffer = new TextEncoder().encode('xxPAYLOADxx').buffer;
    expect(text((await freezeBody(new DataView(buffer, 2, 7), undefined))?.bytes)).toBe('PAYLOAD');
    expect(text((await freezeBody(buffer, undefined))?.bytes)).toBe('xxPAYLOADxx');
  });

  it('reads a Blob with its type', async () => {
    const frozen = await freezeBody(new Blob(['<a/>'], { type: 'application/xml' }), undefined);
    expect(text(frozen?.bytes)).toBe('<a/>');
    expect(frozen?.contentType).toBe('application/xml');
  });

  it('has no body for null or undefined', async () => {
    expect(await freezeBody(null, undefined)).toBeUndefined();
    expect(await freezeBody(undefined, undefined)).toBeUndefined();
  });

  it('refuses a stream or FormData, which cannot be sent again byte for byte (R28)', async () => {
    const stream = new ReadableStream() as unknown as ReplayableBody;
    const form = new FormData() as unknown as ReplayableBody;
    await expect(freezeBody(stream, undefined)).rejects.toThrow(TypeError);
    await expect(freezeBody(form, undefined)).rejects.toThrow(/multipart boundary/);
  });

  it('refuses body and json together, or json that does not serialise', async () => {
    await expect(freezeBody('x', { a: 1 })).rejects.toThrow(/either body or json/);
    await expect(freezeBody(undefined, () => 1)).rejects.toThrow(/not serialisable/);
  });
});

import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { IdempotencyBodyTooLargeError } from '../errors/idempotency-body-too-large.error.js';
import { IdempotencyBodyUnreadableError } from '../errors/idempotency-body-unreadable.error.js';
import { announcesBody, readRequestBody } from './request-body.js';

/** What the server saw: the reader's bytes (or its error), then what a handler reading the stream itself got. */
interface Seen {
  read?: Buffer;
  failure?: unknown;
  handlerGot?: Buffer;
}

type Handler = (incoming: IncomingMessage, response: ServerResponse, seen: Seen) => Promise<void>;

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A real HTTP server whose every request goes through `handler`; resolves with its port and what it saw. */
async function serve(handler: Handler): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((incoming, response) => {
    const record: Seen = {};
    seen.push(record);
    handler(incoming, response, record).catch((error: unknown) => {
      record.failure = error;
      if (!response.headersSent) response.writeHead(error instanceof IdempotencyBodyTooLargeError ? 413 : 400);
      response.end();
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { port: (server!.address() as AddressInfo).port, seen };
}

/** Reads the body as the library does, then reads the stream to its end as a handler would. */
const readThenHandle =
  (limit?: number): Handler =>
  async (incoming, response, seen) => {
    seen.read = await readRequestBody(incoming, limit);
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    seen.handlerGot = Buffer.concat(chunks);
    response.end('ok');
  };

function send(port: number, body: Buffer | string, headers: Record<string, string> = {}, chunkBytes?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/', headers }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    outgoing.on('error', reject);
    const bytes = Buffer.from(body);
    if (!chunkBytes) return outgoing.end(bytes);
    // Written piece by piece, each after the last was flushed, so the server gets many chunks.
    let offset = 0;
    const writeNext = (): void => {
      if (offset >= bytes.length) return void outgoing.end();
      const piece = bytes.subarray(offset, offset + chunkBytes);
      offset += chunkBytes;
      outgoing.write(piece, () => setImmediate(writeNext));
    };
    writeNext();
  });
}

const sha256 = (bytes: Buffer | undefined) => createHash('sha256').update(bytes ?? Buffer.alloc(0)).digest('hex');

describe('readRequestBody (R7)', () => {
  it('reads a small body and puts it back, so a handler reading the stream gets every byte', async () => {
    const { port, seen } = await serve(readThenHandle());
    expect(await send(port, 'reason=A', { 'content-type': 'text/plain' })).toBe(200);
    expect(seen[0].read?.toString()).toBe('reason=A');
    expect(seen[0].handlerGot?.toString()).toBe('reason=A');
  });

  it('reads a body that arrives in many chunks, and the handler still gets all of it in order', async () => {
    const { port, seen } = await serve(readThenHandle());
    const body = Buffer.from(Array.from({ length: 200_000 }, (_, index) => (index * 31) % 256));
    expect(await send(port, body, { 'content-type': 'application/octet-stream' }, 16 * 1024)).toBe(200);
    expect(seen[0].read?.length).toBe(body.length);
    expect(sha256(seen[0].read)).toBe(sha256(body));
    expect(sha256(seen[0].handlerGot)).toBe(sha256(body));
  });

  it('reads a chunked body of unannounced length', async () => {
    const { port, seen } = await serve(readThenHandle());
    const body = Buffer.from('x'.repeat(50_000));
    expect(await send(port, body, { 'transfer-encoding': 'chunked' }, 7000)).toBe(200);
    expect(seen[0].read?.equals(body)).toBe(true);
    expect(seen[0].handlerGot?.equals(body)).toBe(true);
  });

  it('gives the handler the body through data events and pipes too, not only async iteration', async () => {
    const { port, seen } = await serve(async (incoming, response, record) => {
      record.read = await readRequestBody(incoming);
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      await new Promise((resolve) => incoming.on('end', resolve));
      record.handlerGot = Buffer.concat(chunks);
      response.end();
    });
    expect(await send(port, 'one,two,three', {}, 4)).toBe(200);
    expect(seen[0].handlerGot?.toString()).toBe('one,two,three');
  });

  it('refuses a body past the limit with 413, answered after the rest was drained', async () => {
    const { port, seen } = await serve(readThenHandle(1000));
    expect(await send(port, Buffer.alloc(50_000, 1), { 'content-type': 'application/octet-stream' }, 8192)).toBe(413);
    expect(seen[0].failure).toBeInstanceOf(IdempotencyBodyTooLargeError);
    expect(seen[0].handlerGot).toBeUndefined();
    // Exactly at the limit is accepted.
    expect(await send(port, Buffer.alloc(1000, 1))).toBe(200);
    expect(seen[1].read?.length).toBe(1000);
  });

  it('refuses with idempotency_body_unreadable when the client aborts the body, never resolving as empty', async () => {
    const { port, seen } = await serve(readThenHandle());
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\npartial');
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    socket.destroy();
    while (seen[0].failure === undefined && seen[0].read === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(seen[0].read).toBeUndefined();
    expect(seen[0].failure).toBeInstanceOf(IdempotencyBodyUnreadableError);
    expect((seen[0].failure as IdempotencyBodyUnreadableError).getStatus()).toBe(400);
  });

  it('leaves an empty body alone: the stream still ends for a handler that reads it', async () => {
    const { port, seen } = await serve(readThenHandle());
    expect(await send(port, '', { 'content-length': '0' })).toBe(200);
    expect(seen[0].read?.length).toBe(0);
    expect(seen[0].handlerGot?.length).toBe(0);
  });
});

describe('announcesBody (R7)', () => {
  const incoming = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  it('is true for a positive Content-Length or any Transfer-Encoding, false otherwise', () => {
    expect(announcesBody(incoming({ 'content-length': '8' }))).toBe(true);
    expect(announcesBody(incoming({ 'transfer-encoding': 'chunked' }))).toBe(true);
    expect(announcesBody(incoming({ 'content-length': '0' }))).toBe(false);
    expect(announcesBody(incoming({}))).toBe(false);
  });
});

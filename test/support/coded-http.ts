import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

/** The content codings a client may ask for; `identity` asks for none. */
export const ENCODINGS = ['identity', 'gzip', 'deflate', 'br'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** A response as it came off the wire, and its body with the content coding undone. */
export interface CodedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly wire: Buffer;
  readonly decoded: Buffer;
}

/** Starts listening on a free loopback port (supertest does this per request; raw requests need it once). */
export async function listenOnLoopback(server: Server): Promise<void> {
  if (server.listening) return;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
}

/**
 * Sends a request with exactly the headers given (an array value goes out as that many header lines),
 * through Node's own client, which decodes nothing: the test sees the coding the server chose and
 * undoes it itself.
 */
export function sendRaw(
  server: Server,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
  body?: string | Buffer,
): Promise<CodedResponse> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: '127.0.0.1', port, method, path, agent: false, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const wire = Buffer.concat(chunks);
        try {
          resolve({ status: response.statusCode ?? 0, headers: response.headers, wire, decoded: decode(wire, response.headers['content-encoding']) });
        } catch (error) {
          reject(error);
        }
      });
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Sends `body` as JSON (none when undefined) with exactly the other headers given. */
export function sendCoded(
  server: Server,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
  body?: unknown,
): Promise<CodedResponse> {
  if (body === undefined) return sendRaw(server, method, path, headers);
  const payload = Buffer.from(JSON.stringify(body));
  return sendRaw(server, method, path, { 'Content-Type': 'application/json', 'Content-Length': payload.length, ...headers }, payload);
}

function decode(wire: Buffer, coding: string | undefined): Buffer {
  switch (coding) {
    case undefined:
    case 'identity':
      return wire;
    case 'gzip':
      return gunzipSync(wire);
    case 'deflate':
      return inflateSync(wire);
    case 'br':
      return brotliDecompressSync(wire);
    default:
      throw new Error(`unexpected Content-Encoding ${coding}`);
  }
}

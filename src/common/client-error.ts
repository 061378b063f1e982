import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { apiErrorBody } from './api-error.js';
import { codeOfStatus } from './error-answer.js';

/**
 * Answers a request that Node's HTTP parser refuses before any framework sees it (headers too
 * large, a malformed request line) in the API's error shape (R17), instead of Node's empty body or
 * Fastify's own. Written straight to the socket, which is then closed, as Node and Fastify do.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // Something already written (a response on a kept-alive socket) must not be followed by a second status line.
  const untouched = (socket as Duplex & { bytesWritten?: number }).bytesWritten === 0;
  if (socket.writable && untouched) {
    const status = statusOf(error.code);
    const body = JSON.stringify(apiErrorBody(codeOfStatus(status), `${STATUS_CODES[status]}.`));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

// The statuses Node's own handler answers these with.
function statusOf(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

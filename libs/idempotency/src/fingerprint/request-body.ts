import type { IncomingMessage } from 'node:http';
import { IdempotencyBodyTooLargeError } from '../errors/idempotency-body-too-large.error.js';
import { IdempotencyBodyUnreadableError } from '../errors/idempotency-body-unreadable.error.js';

/**
 * The most bytes of a body no parser read that are held to fingerprint it: 1 MiB, Fastify's
 * default `bodyLimit`, so that one request is accepted or refused alike on both platforms (on
 * Fastify, the platform itself answers 413 past it for the bodies it parses). Express's parsers
 * stop at 100 kB, but the bodies left to the library are the ones a handler reads itself, such as
 * uploads, which run larger.
 */
export const UNPARSED_BODY_LIMIT_BYTES = 1024 * 1024;

/** Whether the request's headers announce body bytes, as body parsers decide (type-is `hasBody`). */
export function announcesBody(incoming: IncomingMessage): boolean {
  if (incoming.headers['transfer-encoding'] !== undefined) return true;
  const length = Number(incoming.headers['content-length']);
  return Number.isFinite(length) && length > 0;
}

/**
 * Reads a request body that nothing has read yet, and puts it back: the stream still delivers
 * every byte, then its end, to a handler (or a later interceptor, such as multer's) that reads it
 * itself. The bytes are read with `read()` while paused and handed back with `unshift()` in the
 * same tick as the last read, before the stream could emit 'end' (Node checks for "one last
 * unshift" before ending a stream).
 *
 * Rejects with 413 {@link IdempotencyBodyTooLargeError} past `limitBytes` (after draining the
 * rest, as body parsers do, so the client sees the answer rather than a reset), and with 400
 * {@link IdempotencyBodyUnreadableError} when the stream fails or the client aborts.
 */
export function readRequestBody(incoming: IncomingMessage, limitBytes: number = UNPARSED_BODY_LIMIT_BYTES): Promise<Buffer> {
  // Already whole and nothing buffered: an empty body. Reading would end the stream for nothing.
  if (incoming.complete && incoming.readableLength === 0) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      incoming.off('readable', onReadable);
      incoming.off('error', onFailure);
      incoming.off('aborted', onFailure);
      incoming.off('close', onClose);
    };
    const onFailure = (): void => {
      stop();
      reject(new IdempotencyBodyUnreadableError());
    };
    const onClose = (): void => {
      if (!incoming.complete) onFailure();
    };
    const onReadable = (): void => {
      while (incoming.readableLength > 0) {
        const chunk = incoming.read() as Buffer | null;
        if (chunk === null) break;
        size += chunk.length;
        if (size > limitBytes) {
          stop();
          drain(incoming, () => reject(new IdempotencyBodyTooLargeError(limitBytes)));
          return;
        }
        chunks.push(chunk);
      }
      if (!incoming.complete) return;
      stop();
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      if (body.length > 0) incoming.unshift(body);
      resolve(body);
    };
    incoming.on('readable', onReadable);
    incoming.on('error', onFailure);
    incoming.on('aborted', onFailure);
    incoming.on('close', onClose);
  });
}

/** Discards the rest of a body, then calls back once the client has sent it all (or gone). */
function drain(incoming: IncomingMessage, done: () => void): void {
  let called = false;
  const finish = (): void => {
    if (called) return;
    called = true;
    done();
  };
  incoming.once('end', finish);
  incoming.once('close', finish);
  incoming.once('error', finish);
  incoming.resume();
}

/** The platform's own `send`: Express `res.send`, Fastify `reply.send`. */
export type PlatformSend = (payload?: unknown) => unknown;

/**
 * The platform's response object, reduced to what the library needs. Everything an application puts
 * after the handler's representation (Express middleware such as `compression`, Fastify `onSend`
 * hooks such as `@fastify/compress` or `@fastify/etag`) runs on what goes through its `send`; a
 * replay goes through it too, so that work is redone for each client rather than stored (R9, R15).
 */
export interface PlatformReply {
  /** Calls `sendInstead` in place of the next send Nest (or a filter) makes on this response. */
  replaceNextSend(sendInstead: (send: PlatformSend) => unknown): void;
  /**
   * Starts recording the body the platform hands to its post-handler transforms, when those run
   * before the bytes reach Node (Fastify's `onSend` hooks). Returns a reader of the last one
   * recorded; undefined means the bytes Node receives are the representation (Express).
   */
  recordRepresentation(): () => Buffer | undefined;
  setStatus(status: number): void;
  setHeader(name: string, value: string | readonly string[]): void;
  removeHeader(name: string): void;
  headerNames(): string[];
}

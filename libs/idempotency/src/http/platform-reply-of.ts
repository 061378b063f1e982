import { ServerResponse } from 'node:http';
import { ExpressReply } from './express-reply.js';
import { FastifyReply, type FastifyReplyLike } from './fastify-reply.js';
import type { PlatformReply } from './platform-reply.js';

/** Wraps the response object Nest hands to handlers: Node's own under Express, a reply under Fastify. */
export function platformReplyOf(response: unknown): PlatformReply {
  if (response instanceof ServerResponse) return new ExpressReply(response as ConstructorParameters<typeof ExpressReply>[0]);
  return new FastifyReply(response as FastifyReplyLike);
}

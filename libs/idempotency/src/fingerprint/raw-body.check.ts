import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';

type ParserMethod = (...args: unknown[]) => unknown;

/** The two adapter methods through which Nest registers body parsers, and the platform's name. */
interface ParserRegistry {
  getType(): string;
  registerParserMiddleware?: ParserMethod;
  useBodyParser?: ParserMethod;
}

const JSON_MEDIA_TYPE = 'application/json';

/**
 * Warns at start-up, in one line naming the fix, when JSON bodies will reach the fingerprint
 * without their raw bytes (R7): then it can only compare the parsed values, whose numbers are
 * doubles, so 2^53+1 matches 2^53 and 1e400 matches 1e401.
 *
 * Nest keeps its `rawBody` option to itself; it hands it to the HTTP adapter when `app.init()`
 * registers the body parsers (`registerParserMiddleware(prefix, rawBody)`), or with each
 * `app.useBodyParser()`. This watches those two calls on the adapter, wrapped as soon as
 * `HttpAdapterHost` has one: before `init()` whether the app comes from `NestFactory.create()`
 * (adapter set before providers are built) or from a testing module (set later, by
 * `createNestApplication()`). The first JSON parser registered is the one that runs.
 *
 * With `bodyParser: false` no parser is registered: on Express, JSON bodies then reach the
 * library unread and it reads their bytes itself, so there is nothing to warn about; on Fastify,
 * its own JSON parser runs, which keeps no raw bytes.
 */
@Injectable()
export class RawBodyCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('Idempotency');
  private adapter?: ParserRegistry;
  private parsersRegistered = false;
  /** Whether the first JSON parser registered keeps raw bytes; undefined while none is. */
  private jsonRawBody?: boolean;

  constructor(adapterHost: HttpAdapterHost) {
    adapterHost.init$.subscribe(() => this.watch(adapterHost.httpAdapter as unknown as ParserRegistry | undefined));
  }

  onApplicationBootstrap(): void {
    const platform = this.adapter?.getType();
    if (platform !== 'express' && platform !== 'fastify') return;
    if (this.jsonRawBody ?? platform === 'express') return;
    const fix = this.parsersRegistered
      ? 'NestFactory.create(AppModule, { rawBody: true })'
      : "NestFactory.create(AppModule, { rawBody: true }) with app.useBodyParser('application/json'), since bodyParser is false";
    this.logger.warn(
      'JSON bodies reach the idempotency fingerprint without their raw bytes, so numbers a double cannot hold ' +
        `(2^53+1 and 2^53, 1e400 and 1e401) cannot be told apart (R7). Create the app with ${fix}.`,
    );
  }

  private watch(adapter: ParserRegistry | undefined): void {
    if (!adapter || this.adapter === adapter) return;
    this.adapter = adapter;
    const { registerParserMiddleware, useBodyParser } = adapter;
    if (registerParserMiddleware) {
      adapter.registerParserMiddleware = (...args) => {
        this.parsersRegistered = true;
        this.noteJsonParser(args[1] === true);
        return registerParserMiddleware.apply(adapter, args);
      };
    }
    if (useBodyParser) {
      adapter.useBodyParser = (...args) => {
        if (parsesJson(args[0])) this.noteJsonParser(args[1] === true);
        return useBodyParser.apply(adapter, args);
      };
    }
  }

  private noteJsonParser(rawBody: boolean): void {
    this.jsonRawBody ??= rawBody;
  }
}

/** Whether `app.useBodyParser(type)` registers the JSON parser: Express's `'json'`, Fastify's content type(s). */
function parsesJson(type: unknown): boolean {
  if (Array.isArray(type)) return type.some(parsesJson);
  if (type instanceof RegExp) return new RegExp(type.source, type.flags.replace('g', '')).test(JSON_MEDIA_TYPE);
  if (typeof type !== 'string') return false;
  const normalised = type.trim().toLowerCase();
  return normalised === 'json' || normalised === JSON_MEDIA_TYPE || normalised === '*';
}

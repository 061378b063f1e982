import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  Catch,
  Controller,
  Post,
  RequestMethod,
  Res,
  Sse,
  StreamableFile,
  type ArgumentsHost,
  type ExceptionFilter,
  type MessageEvent,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Exclude, Expose } from 'class-transformer';
import { Idempotent } from 'nestjs-idempotency';
import { interval, map, take, type Observable } from 'rxjs';
import { HandlerRuns } from './probe-app.js';

/** An entity whose secret must never reach a client, first response or replay. */
export class AccountView {
  @Expose() readonly id: string;
  @Expose() readonly run: number;
  @Exclude() readonly passwordHash: string;

  constructor(run: number) {
    this.id = 'acct_1';
    this.run = run;
    this.passwordHash = `$argon2id$secret-of-run-${run}`;
  }
}

/** A domain error that no handler turns into HTTP: the application's global filter does. */
export class OrderNotFoundError extends Error {
  constructor(readonly orderId: string) {
    super(`order ${orderId} not found`);
  }
}

/** A global filter that rewrites a domain error into the application's own error shape (R16). */
@Catch(OrderNotFoundError)
export class OrderNotFoundFilter implements ExceptionFilter<OrderNotFoundError> {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: OrderNotFoundError, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<unknown>();
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(response, 'Content-Type', 'application/vnd.shop.error+json');
    adapter.reply(response, { failure: { kind: 'order_not_found', order: error.orderId, rewrittenBy: 'OrderNotFoundFilter' } }, 404);
  }
}

/** Routes whose responses pass through the plugins production apps put around handlers. */
@Controller('plugins')
export class PluginProbeController {
  constructor(
    private readonly runs: HandlerRuns,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /** Well over the 1 KiB both compression packages wait for before they compress. */
  @Post('large')
  @Idempotent()
  large(): Record<string, unknown> {
    const run = this.runs.record('plugins-large');
    const lines = Array.from({ length: 80 }, (_, index) => ({ index, label: `line ${index} of an order`, unitAmount: 100 + index }));
    return { run, lines };
  }

  /** Serialised by the global ClassSerializerInterceptor, which drops `passwordHash`. */
  @Post('account')
  @Idempotent()
  account(): AccountView {
    return new AccountView(this.runs.record('plugins-account'));
  }

  @Post('missing-order')
  @Idempotent()
  missingOrder(): never {
    this.runs.record('plugins-missing-order');
    throw new OrderNotFoundError('ord_404');
  }

  @Post('file')
  @Idempotent()
  file(): StreamableFile {
    const run = this.runs.record('plugins-file');
    const rows = Array.from({ length: 100 }, (_, index) => `${index},row ${index} of export run ${run}\n`);
    return new StreamableFile(Readable.from(rows.map((row) => Buffer.from(row))), { type: 'text/csv' });
  }

  /** A handler that codes its own body: its bytes cannot be replayed to a client that asks for no coding. */
  @Post('pre-gzipped')
  @Idempotent()
  preGzipped(@Res({ passthrough: true }) response: unknown): Buffer {
    const run = this.runs.record('plugins-pre-gzipped');
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(response, 'Content-Type', 'application/json; charset=utf-8');
    adapter.setHeader(response, 'Content-Encoding', 'gzip');
    return gzipSync(JSON.stringify({ run, coded: 'by the handler' }));
  }

  // A POST that answers with server-sent events, as streaming APIs do.
  @Sse('events', { method: RequestMethod.POST })
  @Idempotent()
  events(): Observable<MessageEvent> {
    const run = this.runs.record('plugins-events');
    return interval(5).pipe(
      take(3),
      map((index) => ({ data: { run, index } })),
    );
  }
}

import type { IdempotencyOutcome } from './idempotency-channels.js';

/** What the library uses of `@opentelemetry/api`, typed here so that nothing else depends on it. */
interface OtelSpan {
  isRecording(): boolean;
  setAttributes(attributes: OtelAttributes): unknown;
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}
type OtelAttributes = Record<string, string | number | boolean>;
interface OtelApi {
  readonly trace: {
    getTracer(name: string): { startSpan(name: string, options?: object, context?: object): OtelSpan };
    setSpan(context: object, span: OtelSpan): object;
  };
  readonly context: { active(): object };
}

/** `SpanStatusCode.ERROR`. */
const SPAN_STATUS_ERROR = 2;
const TRACER_NAME = 'nestjs-idempotency';

let otel: OtelApi | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads `@opentelemetry/api` once, if the application has it (an optional peer): until then, and
 * without it, requests are traced by nobody. Never imported statically, so the package loads
 * without it.
 */
export function loadOpenTelemetry(): Promise<void> {
  loading ??= import('@opentelemetry/api').then(
    (api: OtelApi) => {
      otel = api;
    },
    () => undefined,
  );
  return loading;
}

/**
 * The spans of one idempotent request (R27): `idempotency.claim`, with `idempotency.wait` inside
 * it when a first attempt was in flight, then `idempotency.complete` for a request that ran. Each
 * ends with the outcome in `idempotency.outcome`. Parented on the span active when the claim began
 * (the server span of an instrumented HTTP request), whatever the context at completion. Attributes
 * are computed only for spans that record: with the API but no SDK, a request costs no hashing.
 */
export class RequestTrace {
  private readonly claim: OtelSpan;
  private wait?: OtelSpan;
  private complete?: OtelSpan;
  private attributes?: OtelAttributes;

  private constructor(
    private readonly api: OtelApi,
    private readonly parent: object,
    private readonly attributesOf: () => OtelAttributes,
  ) {
    this.claim = this.startSpan('idempotency.claim', parent);
  }

  /** Starts tracing a request, or returns undefined when OpenTelemetry is not installed. */
  static start(attributesOf: () => OtelAttributes): RequestTrace | undefined {
    return otel ? new RequestTrace(otel, otel.context.active(), attributesOf) : undefined;
  }

  waitStarted(): void {
    this.wait = this.startSpan('idempotency.wait', this.api.trace.setSpan(this.parent, this.claim));
  }

  /** The claim is decided: `fresh` or `takeover` for a run, else the request's final outcome. */
  claimDecided(outcome: IdempotencyOutcome): void {
    if (this.wait) finish(this.wait, outcome);
    finish(this.claim, outcome);
  }

  completionStarted(): void {
    this.complete ??= this.startSpan('idempotency.complete', this.parent);
  }

  completed(outcome: IdempotencyOutcome): void {
    this.completionStarted();
    finish(this.complete!, outcome);
  }

  private startSpan(name: string, parent: object): OtelSpan {
    const span = this.api.trace.getTracer(TRACER_NAME).startSpan(name, undefined, parent);
    if (span.isRecording()) span.setAttributes((this.attributes ??= this.attributesOf()));
    return span;
  }
}

function finish(span: OtelSpan, outcome: IdempotencyOutcome): void {
  span.setAttribute('idempotency.outcome', outcome);
  if (outcome === 'unavailable') span.setStatus({ code: SPAN_STATUS_ERROR, message: 'idempotency store unavailable' });
  span.end();
}

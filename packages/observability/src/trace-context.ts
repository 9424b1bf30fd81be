import { createRequire } from "node:module";

/**
 * Kafka record headers as kafkajs types them.
 *
 * @since 0.1.0
 */
export type KafkaHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/**
 * A W3C trace context read from (or written to) Kafka headers.
 *
 * @since 0.1.0
 */
export interface TraceContext {
  /** The `traceparent` header value, `00-<traceId>-<spanId>-<flags>`. */
  traceparent: string;
  /** The `tracestate` header value, when present. */
  tracestate?: string;
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits (the parent span). */
  spanId: string;
  /** Trace flags; bit 0 is `sampled`. */
  traceFlags: number;
}

/**
 * The part of `@opentelemetry/api` this package uses (structural, so the
 * optional peer dependency is never needed for type-checking).
 *
 * @since 0.1.0
 */
export interface OpenTelemetryApiLike {
  context: {
    active(): unknown;
    with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
      ctx: unknown,
      fn: F,
      thisArg?: ThisParameterType<F>,
      ...args: A
    ): ReturnType<F>;
  };
  trace: {
    getSpanContext(ctx: unknown):
      | {
          traceId: string;
          spanId: string;
          traceFlags: number;
          traceState?: { serialize(): string };
        }
      | undefined;
    setSpanContext(
      ctx: unknown,
      spanContext: {
        traceId: string;
        spanId: string;
        traceFlags: number;
        isRemote?: boolean;
        traceState?: unknown;
      },
    ): unknown;
  };
  isSpanContextValid(spanContext: { traceId: string; spanId: string; traceFlags: number }): boolean;
  createTraceState?(raw?: string): unknown;
}

/**
 * Trace helpers bound to one OpenTelemetry API (or none). See {@link createTraceContext}.
 *
 * @since 0.1.0
 */
export interface TraceContextPropagator {
  /** Whether an OpenTelemetry API is in use. */
  readonly otel: boolean;
  /**
   * Reads `traceparent` / `tracestate` from Kafka headers.
   * @param headers - record headers (names matched case-insensitively)
   * @returns the context, or `undefined` when absent or malformed
   */
  extract(headers: KafkaHeaders | undefined): TraceContext | undefined;
  /**
   * Writes the current trace context into `headers`: the active OpenTelemetry
   * span when there is one, else `parent` passed through unchanged, else
   * nothing. Returns the same `headers` object.
   * @param headers - headers to add to (created when omitted)
   * @param parent - context to pass through when no span is active
   * @returns `headers`
   */
  inject<H extends KafkaHeaders>(headers?: H, parent?: TraceContext): H & KafkaHeaders;
  /**
   * Runs `fn` with the context from `headers` (or a {@link TraceContext}) as
   * the active remote parent, so spans started inside become its children.
   * Without OpenTelemetry it just runs `fn`.
   * @param from - headers or an extracted context
   * @param fn - the work to run
   * @returns what `fn` returns
   */
  withContext<T>(from: KafkaHeaders | TraceContext | undefined, fn: () => T): T;
}

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

function headerString(headers: KafkaHeaders | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  let value = headers[name];
  if (value === undefined) {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : headers[key];
  }
  if (Array.isArray(value)) value = value[0];
  if (value === undefined) return undefined;
  return (Buffer.isBuffer(value) ? value.toString("utf8") : String(value)).trim();
}

/**
 * Parses a W3C `traceparent` value.
 *
 * @param value - the header value (string or bytes)
 * @returns the parsed context, or `undefined` when malformed, version `ff`,
 *   or an all-zero trace or span id
 * @example
 * ```ts
 * parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?.traceId
 * ```
 * @since 0.1.0
 */
export function parseTraceparent(value: string | Buffer | undefined): TraceContext | undefined {
  if (value === undefined) return undefined;
  const s = (Buffer.isBuffer(value) ? value.toString("utf8") : value).trim().toLowerCase();
  const m = TRACEPARENT_RE.exec(s);
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return {
    traceparent: `00-${traceId}-${spanId}-${flags}`,
    traceId: traceId!,
    spanId: spanId!,
    traceFlags: Number.parseInt(flags!, 16),
  };
}

/**
 * Formats a W3C `traceparent` value (version `00`).
 *
 * @param ctx - trace id (32 hex), span id (16 hex) and flags
 * @returns `00-<traceId>-<spanId>-<flags>`
 * @example
 * ```ts
 * formatTraceparent({ traceId, spanId, traceFlags: 1 })
 * ```
 * @since 0.1.0
 */
export function formatTraceparent(ctx: {
  traceId: string;
  spanId: string;
  traceFlags: number;
}): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${(ctx.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/**
 * Binds the trace helpers to an OpenTelemetry API. The default export
 * functions ({@link injectTraceContext} and friends) use `@opentelemetry/api`
 * when it is installed, and pass existing headers through when it is not.
 *
 * @param options - `api`: an OpenTelemetry API object, or `null` for pass-through only
 * @returns a {@link TraceContextPropagator}
 * @example
 * ```ts
 * import * as otel from "@opentelemetry/api";
 * const trace = createTraceContext({ api: otel });
 * const headers = trace.inject({});
 * ```
 * @since 0.1.0
 */
export function createTraceContext(options: {
  api: OpenTelemetryApiLike | null;
}): TraceContextPropagator {
  const api = options.api ?? undefined;
  const extract = (headers: KafkaHeaders | undefined): TraceContext | undefined => {
    const parsed = parseTraceparent(headerString(headers, "traceparent"));
    if (!parsed) return undefined;
    const tracestate = headerString(headers, "tracestate");
    return tracestate ? { ...parsed, tracestate } : parsed;
  };
  return {
    otel: api !== undefined,
    extract,
    inject<H extends KafkaHeaders>(headers?: H, parent?: TraceContext): H & KafkaHeaders {
      const out = (headers ?? {}) as H;
      const span = api?.trace.getSpanContext(api.context.active());
      if (api && span && api.isSpanContextValid(span)) {
        (out as KafkaHeaders).traceparent = formatTraceparent(span);
        const state = span.traceState?.serialize();
        if (state) (out as KafkaHeaders).tracestate = state;
        else delete (out as KafkaHeaders).tracestate;
        return out;
      }
      if (parent) {
        (out as KafkaHeaders).traceparent = parent.traceparent;
        if (parent.tracestate) (out as KafkaHeaders).tracestate = parent.tracestate;
      }
      return out;
    },
    withContext<T>(from: KafkaHeaders | TraceContext | undefined, fn: () => T): T {
      if (!api || !from) return fn();
      const ctx =
        typeof (from as TraceContext).traceId === "string" &&
        typeof (from as TraceContext).traceFlags === "number"
          ? (from as TraceContext)
          : extract(from as KafkaHeaders);
      if (!ctx) return fn();
      const traceState =
        ctx.tracestate && api.createTraceState ? api.createTraceState(ctx.tracestate) : undefined;
      const remote = api.trace.setSpanContext(api.context.active(), {
        traceId: ctx.traceId,
        spanId: ctx.spanId,
        traceFlags: ctx.traceFlags,
        isRemote: true,
        ...(traceState ? { traceState } : {}),
      });
      return api.context.with(remote, fn);
    },
  };
}

let autoPropagator: TraceContextPropagator | undefined;

function loadOpenTelemetry(): OpenTelemetryApiLike | null {
  try {
    const require = createRequire(import.meta.url);
    const api = require("@opentelemetry/api") as OpenTelemetryApiLike;
    return typeof api?.trace?.getSpanContext === "function" ? api : null;
  } catch {
    return null;
  }
}

function auto(): TraceContextPropagator {
  autoPropagator ??= createTraceContext({ api: loadOpenTelemetry() });
  return autoPropagator;
}

/**
 * Reads the W3C trace context from Kafka record headers.
 *
 * @param headers - record headers
 * @returns the context, or `undefined` when absent or malformed
 * @example
 * ```ts
 * const parent = extractTraceContext(message.headers);
 * ```
 * @since 0.1.0
 */
export function extractTraceContext(headers: KafkaHeaders | undefined): TraceContext | undefined {
  return auto().extract(headers);
}

/**
 * Writes `traceparent` (and `tracestate`) into Kafka headers: from the active
 * OpenTelemetry span when `@opentelemetry/api` is installed and a span is
 * active, else passing `parent` through unchanged.
 *
 * @param headers - headers to add to (created when omitted)
 * @param parent - context to pass through when no span is active (for example
 *   the one extracted from the input record)
 * @returns `headers`
 * @example
 * ```ts
 * await producer.send({ topic, messages: [{ key, value, headers: injectTraceContext({}, parent) }] });
 * ```
 * @since 0.1.0
 */
export function injectTraceContext<H extends KafkaHeaders>(
  headers?: H,
  parent?: TraceContext,
): H & KafkaHeaders {
  return auto().inject(headers, parent);
}

/**
 * Runs `fn` with the trace context of an input record active (when
 * `@opentelemetry/api` is installed), so spans and injected headers inside
 * continue the same trace.
 *
 * @param from - record headers or an extracted {@link TraceContext}
 * @param fn - the work to run
 * @returns what `fn` returns
 * @example
 * ```ts
 * await withTraceContext(message.headers, () => handle(message));
 * ```
 * @since 0.1.0
 */
export function withTraceContext<T>(from: KafkaHeaders | TraceContext | undefined, fn: () => T): T {
  return auto().withContext(from, fn);
}

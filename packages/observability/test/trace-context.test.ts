import { AsyncLocalStorage } from "node:async_hooks";
import * as otel from "@opentelemetry/api";
import {
  createTraceContext,
  extractTraceContext,
  formatTraceparent,
  injectTraceContext,
  parseTraceparent,
  withTraceContext,
} from "@sluice/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/** A minimal AsyncLocalStorage context manager, as @opentelemetry/context-async-hooks provides. */
class AlsContextManager implements otel.ContextManager {
  readonly #als = new AsyncLocalStorage<otel.Context>();
  active(): otel.Context {
    return this.#als.getStore() ?? otel.ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: otel.Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: otel.Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#als.disable();
    return this;
  }
}

describe("traceparent parsing", () => {
  it("parses and formats W3C traceparent", () => {
    const ctx = parseTraceparent(TP)!;
    expect(ctx).toEqual({
      traceparent: TP,
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      traceFlags: 1,
    });
    expect(formatTraceparent(ctx)).toBe(TP);
    expect(parseTraceparent(Buffer.from(TP.toUpperCase()))?.traceparent).toBe(TP);
  });

  it("rejects malformed values", () => {
    for (const bad of [
      "",
      "garbage",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ]) {
      expect(parseTraceparent(bad), bad).toBeUndefined();
    }
    // a future version may carry more fields
    expect(
      parseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")?.traceId,
    ).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });
});

describe("without OpenTelemetry (pass-through)", () => {
  const trace = createTraceContext({ api: null });

  it("extracts from Kafka headers (Buffer, case-insensitive) and passes the parent through", () => {
    const incoming = { TraceParent: Buffer.from(TP), tracestate: Buffer.from("vendor=abc") };
    const parent = trace.extract(incoming);
    expect(parent).toMatchObject({ traceparent: TP, tracestate: "vendor=abc" });
    const out = trace.inject({ other: "x" }, parent);
    expect(out).toEqual({ other: "x", traceparent: TP, tracestate: "vendor=abc" });
    // round trip through bytes as Kafka stores them
    const bytes = Object.fromEntries(
      Object.entries(out).map(([k, v]) => [k, Buffer.from(String(v))]),
    );
    expect(trace.extract(bytes)?.traceparent).toBe(TP);
  });

  it("leaves headers alone when there is nothing to pass, and runs fn as is", () => {
    expect(trace.inject({ a: "1" })).toEqual({ a: "1" });
    expect(trace.extract({ traceparent: "nope" })).toBeUndefined();
    expect(trace.extract(undefined)).toBeUndefined();
    expect(trace.withContext({ traceparent: TP }, () => 42)).toBe(42);
    expect(trace.otel).toBe(false);
  });
});

describe("with @opentelemetry/api", () => {
  beforeAll(() => {
    otel.context.setGlobalContextManager(new AlsContextManager());
  });
  afterAll(() => {
    otel.context.disable();
  });

  it("the default helpers find the installed API", () => {
    expect(createTraceContext({ api: otel }).otel).toBe(true);
  });

  it("round trip: extract from input headers, run in that context, inject into output headers", () => {
    const input = { traceparent: Buffer.from(TP), tracestate: Buffer.from("vendor=abc") };
    const output = withTraceContext(input, () => {
      const span = otel.trace.getSpanContext(otel.context.active());
      expect(span).toMatchObject({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", isRemote: true });
      return injectTraceContext({});
    });
    expect(output.traceparent).toBe(TP);
    expect(output.tracestate).toBe("vendor=abc");
    expect(extractTraceContext(output)?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });

  it("injects the active span (a child span's id), not the parent's", () => {
    const childSpanId = "1111111111111111";
    const out = withTraceContext({ traceparent: TP }, () => {
      const child = otel.trace.setSpanContext(otel.context.active(), {
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: childSpanId,
        traceFlags: otel.TraceFlags.SAMPLED,
      });
      return otel.context.with(child, () => injectTraceContext({}, parseTraceparent(TP)));
    });
    expect(out.traceparent).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${childSpanId}-01`);
  });

  it("falls back to pass-through when no span is active", () => {
    expect(injectTraceContext({}, parseTraceparent(TP))).toEqual({ traceparent: TP });
    expect(injectTraceContext({})).toEqual({});
  });
});

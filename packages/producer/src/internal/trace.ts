import { createRequire } from "node:module";

interface SpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
}
interface OtelApi {
  context: { active(): unknown };
  trace: {
    getSpanContext(ctx: unknown): SpanContext | undefined;
    isSpanContextValid(sc: SpanContext): boolean;
  };
}

let api: OtelApi | null | undefined;

function load(): OtelApi | null {
  if (api !== undefined) return api;
  try {
    // Optional peer dependency: present only when the application uses OpenTelemetry.
    api = createRequire(import.meta.url)("@opentelemetry/api") as OtelApi;
  } catch {
    api = null;
  }
  return api;
}

/** W3C `traceparent` of the active OpenTelemetry span, or undefined. */
export function activeTraceparent(): string | undefined {
  const otel = load();
  if (!otel) return undefined;
  const sc = otel.trace.getSpanContext(otel.context.active());
  if (!sc || !otel.trace.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

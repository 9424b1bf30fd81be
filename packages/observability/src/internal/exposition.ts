import type { Registry, RegistryContentType } from "prom-client";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const OPENMETRICS_CONTENT_TYPE =
  "application/openmetrics-text; version=1.0.0; charset=utf-8";

export type Format = "prometheus" | "openmetrics";

/**
 * Picks the exposition format from an `Accept` header: OpenMetrics when the
 * client lists `application/openmetrics-text` with a quality at least that of
 * `text/plain` (Prometheus itself asks this way), else the Prometheus text format.
 */
export function negotiate(accept: string | undefined): Format {
  if (!accept) return "prometheus";
  let om = -1;
  let text = -1;
  for (const part of accept.split(",")) {
    const [type = "", ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split("=").map((s) => s.trim());
      if (k === "q" && v !== undefined) {
        const n = Number(v);
        q = Number.isFinite(n) ? n : 0;
      }
    }
    if (type === "application/openmetrics-text") om = Math.max(om, q);
    else if (type === "text/plain" || type === "text/*") text = Math.max(text, q);
  }
  return om > 0 && om >= text ? "openmetrics" : "prometheus";
}

function number(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

function escapeHelp(s: string, om: boolean): string {
  const out = s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
  return om ? out.replace(/"/g, '\\"') : out;
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelValue(name: string, v: unknown, om: boolean): string {
  if (om && (name === "le" || name === "quantile") && typeof v === "number") {
    // OpenMetrics wants canonical floats for bucket and quantile bounds.
    return Number.isInteger(v) ? `${v}.0` : number(v);
  }
  return escapeLabel(String(v));
}

interface JsonValue {
  value: number;
  labels?: Record<string, string | number>;
  metricName?: string;
}
interface JsonMetric {
  name: string;
  help: string;
  type: string;
  values?: JsonValue[];
}

/** Renders every metric of `registry` in the chosen format. */
export async function render(
  registry: Registry<RegistryContentType>,
  format: Format,
): Promise<string> {
  // prom-client's own text output is the fastest path, and does not touch the
  // registry when the registry is in Prometheus mode.
  if (format === "prometheus" && registry.contentType === PROMETHEUS_CONTENT_TYPE) {
    return registry.metrics();
  }
  return renderFromJson(registry, format);
}

/** Renders from `getMetricsAsJSON()`, which never mutates the registry. */
export async function renderFromJson(
  registry: Registry<RegistryContentType>,
  format: Format,
): Promise<string> {
  const om = format === "openmetrics";
  const metrics = (await registry.getMetricsAsJSON()) as unknown as JsonMetric[];
  const out: string[] = [];
  for (const metric of metrics) {
    const type = ["counter", "gauge", "histogram", "summary"].includes(metric.type)
      ? metric.type
      : om
        ? "unknown"
        : "untyped";
    const family = om && type === "counter" ? metric.name.replace(/_total$/, "") : metric.name;
    out.push(`# HELP ${family} ${escapeHelp(metric.help, om)}`);
    out.push(`# TYPE ${family} ${type}`);
    for (const v of metric.values ?? []) {
      let sample = v.metricName ?? metric.name;
      if (om && type === "counter") sample = `${family}_total`;
      const entries = Object.entries(v.labels ?? {});
      const labels = entries.length
        ? `{${entries.map(([k, x]) => `${k}="${labelValue(k, x, om)}"`).join(",")}}`
        : "";
      out.push(`${sample}${labels} ${number(v.value)}`);
    }
  }
  if (om) out.push("# EOF");
  return `${out.join("\n")}\n`;
}

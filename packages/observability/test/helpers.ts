import diagnostics_channel from "node:diagnostics_channel";
import type { Registry } from "prom-client";

/** Publishes like a Sluice package does. */
export function publish(channel: string, message: unknown): void {
  const ch = diagnostics_channel.channel(channel);
  if (ch.hasSubscribers) ch.publish(message);
}

/** Value of one sample of a metric, matched on exactly these labels (plus `metricName` for histogram parts). */
export async function sample(
  registry: Registry,
  name: string,
  labels: Record<string, string | number> = {},
  metricName?: string,
): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  const want = Object.entries(labels).map(([k, v]) => [k, String(v)]);
  const hit = data.values.find((v) => {
    const have = (v.labels ?? {}) as Record<string, string | number>;
    const names = Object.keys(have);
    const mn = (v as { metricName?: string }).metricName;
    if (metricName !== undefined && mn !== metricName) return false;
    if (metricName === undefined && mn !== undefined && mn !== name) return false;
    return names.length === want.length && want.every(([k, x]) => String(have[k!]) === x);
  });
  return hit?.value;
}

/** Every sample of a metric as `{labels, value}`. */
export async function samples(registry: Registry, name: string) {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values.map((v) => ({ labels: { ...v.labels }, value: v.value }));
}

/** A pino destination that keeps every JSON line written to it. */
export function captureLines() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  return {
    lines,
    raw,
    destination: {
      write(s: string) {
        raw.push(s);
        lines.push(JSON.parse(s));
      },
    },
  };
}

/**
 * Sum of the samples of `name` in a Prometheus text scrape whose labels
 * include `labels`.
 */
export function metricTotal(
  scrape: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  for (const line of scrape.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries(
      [...(m[1] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k, v]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[2]);
  }
  return sum;
}
